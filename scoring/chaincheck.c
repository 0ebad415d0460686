/* The event log's hash chain checked in C: the same checks as scoring/logread.py's
 * verify_chunk, for seqs lo..hi, without a Python object per row.
 *
 * The canonical body is built exactly as hub/logformat.py's event_hash builds it (Python's
 * json.dumps with sorted keys, no spaces, ensure_ascii=False). A row this code cannot
 * judge with certainty (a column of an unexpected type, text that is not strict UTF-8, or
 * a hash that does not match) is not judged here: the call stops at it (CC_SUSPECT) and the
 * Python reference decides. So this code can only make a verdict faster, never different.
 */
#define _GNU_SOURCE /* memmem */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: see the hashing below */
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* CC_SQLITE: SQLite failed, or memory ran out; Python then reads the log and says what is wrong */
enum { CC_OK = 0, CC_MISSING = 1, CC_LINK = 2, CC_SUSPECT = 3, CC_SQLITE = 4 };

typedef struct {
    int64_t count;     /* rows verified (continuity, link and hash) */
    int64_t seq;       /* MISSING: the expected seq; LINK/SUSPECT: the row's seq */
    int64_t found;     /* MISSING: the next stored seq, or -1 at the end of the range */
    int status;
    char first_prev[72]; /* the stored prev_hash of the first row read ("" if none) */
    char last_hash[72];  /* the hash of the last verified row ("" if none) */
} cc_result;

/* An operation's responses, gathered from the rows verified: the columns of
 * scoring.drilllog.Responses. Inputs: op (NULL: gather nothing), last_seq, kinds. Outputs
 * (malloc'd; cc_free releases them): per row, kind (the index in kinds, plus NEED_CID when
 * the command id must be read by the Python reference), seq, ts, and ids[2i], ids[2i+1]: the
 * command id and the department ("None" for none) as indexes into the distinct strings, the
 * j-th of which ends at ends[j] in text. */
#define NEED_CID 64
typedef struct {
    const char *op;
    int64_t last_seq;
    const char **kinds;
    int nkinds;
    int8_t *kind;
    int64_t *seq, *ts;
    int32_t *ids;
    int64_t n, cap;
    char *text;
    int64_t *ends;
    int64_t nstr, capstr, ntext, captext;
    int32_t *slots; /* open addressing over the distinct strings: index + 1, 0 for empty */
    int64_t nslots;
} cc_responses;

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static int grow(buf *b, size_t more) {
    if (b->n + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put(buf *b, const char *s, size_t n) {
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* Length of the strict UTF-8 sequence (as Python's decoder accepts it: no overlongs, no
 * surrogates, <= U+10FFFF) starting at s[i], or 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t n) {
    unsigned c = s[i];
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c == 0xE0) { k = 2; lo = 0xA0; }
    else if (c == 0xED) { k = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) k = 2;
    else if (c == 0xF0) { k = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) k = 3;
    else if (c == 0xF4) { k = 3; hi = 0x8F; }
    else return 0;
    if (i + k >= n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t j = 2; j <= k; j++)
        if (s[i + j] < 0x80 || s[i + j] > 0xBF) return 0;
    return k + 1;
}

/* Append a JSON string literal as Python's json encode_basestring (ensure_ascii=False) makes
 * it from the text's code points. 1 if done, 0 if the text is not strict UTF-8, -1 on no memory. */
static int quote(buf *b, const unsigned char *s, size_t n) {
    /* plain[c]: byte c is copied as it is (printable ASCII but the quote and the backslash) */
    static unsigned char plain[256];
    static int ready;
    if (!ready) { /* idempotent: racing threads write the same values */
        for (int c = 0x20; c < 0x80; c++) plain[c] = c != '"' && c != '\\';
        ready = 1;
    }
    if (grow(b, n * 6 + 2)) return -1;
    char *o = b->p + b->n;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
#ifdef __SSE2__
        /* 16 bytes at a time while none is special: < 0x20, '"', '\\' or >= 0x80 */
        const __m128i space = _mm_set1_epi8(0x20), dq = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
        while (run + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + run));
            /* signed compare: bytes >= 0x80 are negative, so "v < 0x20" also catches them */
            __m128i bad = _mm_or_si128(_mm_cmpgt_epi8(space, v),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, dq), _mm_cmpeq_epi8(v, bs)));
            int mask = _mm_movemask_epi8(bad);
            if (mask) { run += (size_t)__builtin_ctz((unsigned)mask); goto scanned; }
            run += 16;
        }
#endif
        while (run < n && plain[s[run]]) run++;
#ifdef __SSE2__
    scanned:
#endif
        memcpy(o, s + i, run - i);
        o += run - i;
        i = run;
        if (i == n) break;
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(s, i, n);
            if (!k) return 0;
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        i++;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    return 1;
}

/* Append column `col` as a JSON string: 1 done, 0 not text or not strict UTF-8, -1 no memory. */
static int text(buf *b, sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) != SQLITE_TEXT) return 0;
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s) return 0;
    return quote(b, s, (size_t)sqlite3_column_bytes(st, col));
}

static int key_n(buf *b, const char *k, size_t n) {
    if (grow(b, n)) return -1;
    put(b, k, n);
    return 0;
}
#define key(b, k) key_n(b, k, sizeof(k) - 1) /* k: a string literal */

static int num(buf *b, int64_t v) {
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    if (grow(b, 24)) return -1;
    char tmp[24];
    int n = 24;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    }
    if (u >= 10) {
        tmp[--n] = pairs[u * 2 + 1];
        tmp[--n] = pairs[u * 2];
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0) tmp[--n] = '-';
    put(b, tmp + n, (size_t)(24 - n));
    return 0;
}

/* Append the row's canonical body to b (emptied first): 1 if built, 0 if the row must go to the
 * reference, -1 on no memory. Columns: seq, ts_us, mono_ns, op, op_kind, role, dept, kind,
 * payload, prev_hash, hash. */
static int body(sqlite3_stmt *st, buf *b, int64_t seq) {
    int r;
    if (sqlite3_column_type(st, 1) != SQLITE_INTEGER || sqlite3_column_type(st, 2) != SQLITE_INTEGER)
        return 0;
    b->n = 0;
#define PUT(k) if (key(b, k)) return -1
#define TEXT(col) if ((r = text(b, st, col)) != 1) return r
    PUT("{\"dept\":");
    if (sqlite3_column_type(st, 6) == SQLITE_NULL) { PUT("null"); } else { TEXT(6); }
    PUT(",\"kind\":"); TEXT(7);
    PUT(",\"mono_ns\":"); if (num(b, sqlite3_column_int64(st, 2))) return -1;
    PUT(",\"op\":"); TEXT(3);
    PUT(",\"op_kind\":"); TEXT(4);
    PUT(",\"payload\":"); TEXT(8);
    PUT(",\"prev\":"); TEXT(9);
    PUT(",\"role\":"); TEXT(5);
    PUT(",\"seq\":"); if (num(b, seq)) return -1;
    PUT(",\"ts_us\":"); if (num(b, sqlite3_column_int64(st, 1))) return -1;
    PUT("}");
#undef PUT
#undef TEXT
    return 1;
}

static void hex(const unsigned char *d, char *out) {
    for (int i = 0; i < 32; i++) {
        out[2 * i] = "0123456789abcdef"[d[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
    }
    out[64] = 0;
}

static void copy_text(char *dst, const unsigned char *s, size_t n) {
    if (n > 64) n = 64; /* a longer value never equals a hash: callers compare lengths first */
    memcpy(dst, s, n);
    dst[n] = 0;
}


/* The command id in a payload as scoring.logread.command_id_of's fast path finds it
 * (one object, a plain string value); 0 if that path does not apply. */
static int command_id(const unsigned char *p, size_t n, const unsigned char **v, size_t *nv) {
    static const char pat[] = "\"command_id\":\"";
    size_t braces = 0;
    for (size_t i = 0; i < n; i++) braces += p[i] == '{';
    if (braces != 1) return 0;
    const unsigned char *at = memmem(p, n, pat, sizeof pat - 1);
    if (!at) return 0;
    const unsigned char *j = at + sizeof pat - 1, *end = p + n;
    const unsigned char *k = memchr(j, '"', (size_t)(end - j));
    if (!k || memchr(j, '\\', (size_t)(k - j))) return 0;
    *v = j;
    *nv = (size_t)(k - j);
    return 1;
}

static uint64_t fnv1a(const unsigned char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static const char *str_at(const cc_responses *g, int64_t j, size_t *n) {
    int64_t start = j ? g->ends[j - 1] : 0;
    *n = (size_t)(g->ends[j] - start);
    return g->text + start;
}

static int rehash(cc_responses *g, int64_t nslots) {
    int32_t *slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) return -1;
    for (int64_t j = 0; j < g->nstr; j++) {
        size_t n;
        const char *s = str_at(g, j, &n);
        uint64_t at = fnv1a((const unsigned char *)s, n) & (uint64_t)(nslots - 1);
        while (slots[at]) at = (at + 1) & (uint64_t)(nslots - 1);
        slots[at] = (int32_t)(j + 1);
    }
    free(g->slots);
    g->slots = slots;
    g->nslots = nslots;
    return 0;
}

/* The index of string s among the distinct strings (added if new), or -1 on no memory. */
static int64_t intern(cc_responses *g, const void *s, size_t n) {
    if (2 * (g->nstr + 1) > g->nslots && rehash(g, g->nslots ? g->nslots * 2 : 1024)) return -1;
    uint64_t mask = (uint64_t)(g->nslots - 1);
    uint64_t at = fnv1a(s, n) & mask;
    for (; g->slots[at]; at = (at + 1) & mask) {
        size_t m;
        const char *t = str_at(g, g->slots[at] - 1, &m);
        if (m == n && memcmp(t, s, n) == 0) return g->slots[at] - 1;
    }
    if (g->ntext + (int64_t)n > g->captext) {
        int64_t cap = g->captext ? g->captext : 1 << 16;
        while (cap < g->ntext + (int64_t)n) cap *= 2;
        char *t = realloc(g->text, (size_t)cap);
        if (!t) return -1;
        g->text = t;
        g->captext = cap;
    }
    if (g->nstr == g->capstr) {
        int64_t cap = g->capstr ? g->capstr * 2 : 1024;
        int64_t *e = realloc(g->ends, (size_t)cap * sizeof *e);
        if (!e) return -1;
        g->ends = e;
        g->capstr = cap;
    }
    memcpy(g->text + g->ntext, s, n);
    g->ntext += (int64_t)n;
    g->ends[g->nstr] = g->ntext;
    g->slots[at] = (int32_t)(g->nstr + 1);
    return g->nstr++;
}

/* Gather the row if it is one of the operation's responses: 0 done (or not one), -1 no memory. */
static int gather(cc_responses *g, sqlite3_stmt *st, int64_t seq) {
    if (!g || !g->op || seq > g->last_seq) return 0;
    const char *op = (const char *)sqlite3_column_text(st, 3);
    if (!op || strcmp(op, g->op) != 0) return 0;
    const char *kind = (const char *)sqlite3_column_text(st, 7);
    int code = -1;
    for (int i = 0; kind && i < g->nkinds; i++)
        if (strcmp(kind, g->kinds[i]) == 0) { code = i; break; }
    if (code < 0) return 0;
    if (g->n == g->cap) {
        int64_t cap = g->cap ? g->cap * 2 : 4096;
        int8_t *k = realloc(g->kind, (size_t)cap);
        if (k) g->kind = k;
        int64_t *q = realloc(g->seq, (size_t)cap * 8);
        if (q) g->seq = q;
        int64_t *t = realloc(g->ts, (size_t)cap * 8);
        if (t) g->ts = t;
        int32_t *e = realloc(g->ids, (size_t)cap * 8);
        if (e) g->ids = e;
        if (!k || !q || !t || !e) return -1;
        g->cap = cap;
    }
    const unsigned char *cid = NULL;
    size_t ncid = 0;
    const unsigned char *payload = sqlite3_column_text(st, 8);
    if (!command_id(payload, (size_t)sqlite3_column_bytes(st, 8), &cid, &ncid)) {
        code |= NEED_CID;
        cid = (const unsigned char *)"";
        ncid = 0;
    }
    int64_t c = intern(g, cid, ncid);
    int64_t d = sqlite3_column_type(st, 6) == SQLITE_NULL
                    ? intern(g, "None", 4)
                    : intern(g, sqlite3_column_text(st, 6), (size_t)sqlite3_column_bytes(st, 6));
    if (c < 0 || d < 0) return -1;
    g->ids[2 * g->n] = (int32_t)c;
    g->ids[2 * g->n + 1] = (int32_t)d;
    g->kind[g->n] = (int8_t)code;
    g->seq[g->n] = seq;
    g->ts[g->n] = sqlite3_column_int64(st, 1);
    g->n++;
    return 0;
}

void cc_free(cc_responses *g) {
    free(g->kind);
    free(g->seq);
    free(g->ts);
    free(g->ids);
    free(g->text);
    free(g->ends);
    free(g->slots);
    g->kind = NULL;
    g->seq = g->ts = g->ends = NULL;
    g->ids = g->slots = NULL;
    g->text = NULL;
    g->n = g->cap = g->nstr = g->capstr = g->ntext = g->captext = g->nslots = 0;
}

/* Verify seqs lo..hi of the log at `path` (opened read-only). `expect_prev`: the hash the
 * first row's prev_hash must equal, or NULL to take it as it is (reported in first_prev).
 * `g` (may be NULL): where the operation's responses among the verified rows are gathered. */
int cc_verify(const char *path, int64_t lo, int64_t hi, const char *expect_prev, cc_result *r,
              cc_responses *g) {
    memset(r, 0, sizeof *r);
    r->found = -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    buf b = {0};
    char want[72] = "";
    int have_prev = 0;
    if (expect_prev) {
        copy_text((char *)want, (const unsigned char *)expect_prev, strlen(expect_prev));
        have_prev = 1;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        r->status = CC_SQLITE;
        sqlite3_close(db);
        return r->status;
    }
    /* read the file through a mapping: no copy of every page into SQLite's cache */
    sqlite3_exec(db, "PRAGMA mmap_size=17179869184", NULL, NULL, NULL);
    const char *sql =
        "SELECT seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload, prev_hash, hash "
        "FROM events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        r->status = CC_SQLITE;
        goto done;
    }
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    int64_t expected = lo;
    unsigned char digest[32];
    char got[72];
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            r->status = CC_SQLITE;
            goto done;
        }
        int64_t seq = sqlite3_column_int64(st, 0);
        if (seq != expected) {
            r->status = CC_MISSING;
            r->seq = expected;
            r->found = seq;
            goto done;
        }
        /* the types first: after a conversion (column_text of a blob) they are undefined */
        if (sqlite3_column_type(st, 9) != SQLITE_TEXT || sqlite3_column_type(st, 10) != SQLITE_TEXT) {
            r->status = CC_SUSPECT;
            r->seq = seq;
            goto done;
        }
        const unsigned char *ph = sqlite3_column_text(st, 9);
        size_t nph = (size_t)sqlite3_column_bytes(st, 9);
        const unsigned char *h = sqlite3_column_text(st, 10);
        size_t nh = (size_t)sqlite3_column_bytes(st, 10);
        if (!ph || !h || nph > 64 || nh != 64) {
            r->status = CC_SUSPECT;
            r->seq = seq;
            goto done;
        }
        if (expected == lo) copy_text(r->first_prev, ph, nph);
        if ((expected != lo || have_prev) && (nph != strlen(want) || memcmp(ph, want, nph) != 0)) {
            r->status = CC_LINK;
            r->seq = seq;
            goto done;
        }
        int built = body(st, &b, seq);
        if (built < 0) {
            r->status = CC_SQLITE;
            goto done;
        }
        if (built) {
            SHA256_CTX ctx; /* the low-level calls: OpenSSL 3's one-shot SHA256() looks the
                               algorithm up again on every call, slower than the hash itself */
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, b.p, b.n);
            SHA256_Final(digest, &ctx);
            hex(digest, got);
        }
        if (!built || memcmp(got, h, 64) != 0) {
            r->status = CC_SUSPECT;
            r->seq = seq;
            goto done;
        }
        if (gather(g, st, seq)) {
            r->status = CC_SQLITE;
            goto done;
        }
        memcpy(want, h, 64);
        want[64] = 0;
        memcpy(r->last_hash, h, 64);
        r->last_hash[64] = 0;
        r->count++;
        expected++;
    }
    if (expected <= hi) {
        r->status = CC_MISSING;
        r->seq = expected;
    }
done:
    free(b.p);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return r->status;
}
