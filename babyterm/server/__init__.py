"""babyterm's HTTP faces: OpenAI- and Ollama-compatible routes on the one chat path (see serve.py)."""
