"""The school: the staff that teach the baby (librarian, tutor, scribe, calligraphist, counsellor)."""
