/* One token through the transformer (brain/transformer.py), batch 1, float32: run.c's forward.

   torch spends ~8 us on each of a one-token step's ~115 small ops on a slow CPU, and the
   matmuls between them take a fifth of the step; here the whole step is one call. The equations
   are _decode's: the RMSNorm weights are already folded into the matrices after them, every
   matrix is (in, out) row-major, and each layer's cache holds keys (heads 0..nkv-1) then values
   (nkv..2nkv-1), (2 nkv, seq_len, head_size). Built by brain/native.py; called through ctypes,
   which lets go of the GIL for the call. */

#include <math.h>
#include <string.h>

typedef struct {
    int dim, n_layers, n_heads, n_kv_heads, head_size, hidden_dim, vocab_size, seq_len;
    float eps;
    const float *embeddings;        /* (vocab, dim) */
    const float *const *wqkv;       /* per layer (dim, (nh + 2 nkv) hs) */
    const float *const *wo;         /* (nh hs, dim) */
    const float *const *w13;        /* (dim, 2 hidden): W1's columns, then W3's */
    const float *const *w2;         /* (hidden, dim) */
    const float *head;              /* (dim, vocab), the last norm's weight folded in */
    const float *cos, *sin;         /* (seq_len, hs / 2) */
    float *const *kv;               /* per layer (2 nkv, seq_len, hs) */
    float *scratch;                 /* 3 dim + (nh + 2 nkv) hs + 2 hidden + seq_len floats */
} Model;

int babyterm_abi(void) { return 1; }

/* out (n) = x (k) @ w (k, n): rows of w four at a time, the inner loop contiguous so it vectorises. */
static void matmul(float *restrict out, const float *restrict x, const float *restrict w, int k, int n) {
    memset(out, 0, (size_t)n * sizeof(float));
    int i = 0;
    for (; i + 4 <= k; i += 4) {
        const float a = x[i], b = x[i + 1], c = x[i + 2], d = x[i + 3];
        const float *w0 = w + (size_t)i * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        for (int j = 0; j < n; j++) out[j] += a * w0[j] + b * w1[j] + c * w2[j] + d * w3[j];
    }
    for (; i < k; i++) {
        const float a = x[i];
        const float *row = w + (size_t)i * n;
        for (int j = 0; j < n; j++) out[j] += a * row[j];
    }
}

/* a . b in eight running sums, which the compiler keeps in one vector register. */
static float dot(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float sum = 0.0f;
    for (int k = 0; k < 8; k++) sum += acc[k];
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* out = x / sqrt(mean(x^2) + eps): the norm's weight lives in the next matrix. */
static void rms_norm(float *out, const float *x, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale;
}

/* The next-token logits of `token` at `pos`, its keys and values written to the cache.
   shift (dim) or NULL: the pixel's input. key_bias (pos + 1) or NULL: emphasis, added to the
   scores. weights (n_layers, nh, pos + 1) or NULL: where the attention weights go (insight). */
void babyterm_decode(const Model *m, int token, int pos, const float *shift, const float *key_bias,
                     float *logits, float *weights) {
    const int C = m->dim, nh = m->n_heads, nkv = m->n_kv_heads, hs = m->head_size, H = m->hidden_dim;
    const int S = m->seq_len, half = hs / 2, group = nh / nkv, P = pos + 1, width = (nh + 2 * nkv) * hs;
    float *x = m->scratch, *n = x + C, *y = n + C, *qkv = y + C, *gu = qkv + width, *att = gu + 2 * H;
    const float scale = 1.0f / sqrtf((float)hs);
    const float *cos = m->cos + (size_t)pos * half, *sin = m->sin + (size_t)pos * half;

    memcpy(x, m->embeddings + (size_t)token * C, (size_t)C * sizeof(float));
    if (shift)
        for (int i = 0; i < C; i++) x[i] += shift[i];
    for (int l = 0; l < m->n_layers; l++) {
        rms_norm(n, x, C, m->eps);
        matmul(qkv, n, m->wqkv[l], C, width);
        for (int h = 0; h < nh + nkv; h++) { /* rotate adjacent pairs of the q and k heads */
            float *v = qkv + h * hs;
            for (int j = 0; j < half; j++) {
                const float a = v[2 * j], b = v[2 * j + 1];
                v[2 * j] = a * cos[j] - b * sin[j];
                v[2 * j + 1] = a * sin[j] + b * cos[j];
            }
        }
        float *cache = m->kv[l];
        for (int h = 0; h < 2 * nkv; h++)
            memcpy(cache + ((size_t)h * S + pos) * hs, qkv + (nh + h) * hs, (size_t)hs * sizeof(float));
        for (int h = 0; h < nh; h++) {
            const float *q = qkv + h * hs;
            const float *keys = cache + (size_t)(h / group) * S * hs;
            const float *values = cache + (size_t)(nkv + h / group) * S * hs;
            float top = -INFINITY;
            for (int s = 0; s < P; s++) {
                att[s] = dot(q, keys + (size_t)s * hs, hs) * scale + (key_bias ? key_bias[s] : 0.0f);
                if (att[s] > top) top = att[s];
            }
            float sum = 0.0f;
            for (int s = 0; s < P; s++) sum += att[s] = expf(att[s] - top);
            float *out = y + h * hs;
            memset(out, 0, (size_t)hs * sizeof(float));
            for (int s = 0; s < P; s++) {
                const float w = att[s] / sum;
                if (weights) weights[((size_t)l * nh + h) * P + s] = w;
                for (int i = 0; i < hs; i++) out[i] += w * values[(size_t)s * hs + i];
            }
        }
        matmul(n, y, m->wo[l], nh * hs, C);
        for (int i = 0; i < C; i++) x[i] += n[i];
        rms_norm(n, x, C, m->eps);
        matmul(gu, n, m->w13[l], C, 2 * H);
        for (int i = 0; i < H; i++) gu[i] = gu[i] / (1.0f + expf(-gu[i])) * gu[H + i]; /* silu(W1) W3 */
        matmul(n, gu, m->w2[l], H, C);
        for (int i = 0; i < C; i++) x[i] += n[i];
    }
    rms_norm(n, x, C, m->eps);
    matmul(logits, n, m->head, C, m->vocab_size); /* 1.6x the speed of a dot per row of E */
}
