/*
 * Optional compiled fast path for NTU RGB+D ``.skeleton`` files (grammar:
 * DATA_FORMATS.md section 1.2). Built by setup.py when a C compiler is available; the
 * pure-numpy path in ntu_parse.py is used otherwise and gives the same arrays.
 *
 * parse(data: bytes) -> None | (num_frames, frames, codes, body_ids, xyz)
 *
 *   frames    bytes of int64: the 0-based raw frame index of every body record
 *   codes     bytes of int64: for every record, the index of its body ID in body_ids
 *   body_ids  list of str: the distinct body ID tokens in order of first appearance
 *   xyz       bytes of float64: x, y, z of the 25 joints of every record, bit-identical
 *             to Python's float() of each token (see to_double)
 *
 * Returns None whenever the file is not a plain, well-formed skeleton file (odd bytes,
 * wrong token counts, blank or missing lines, an unparsable number, trailing content):
 * the Python slow path then parses it or reports the exact file/line/field.
 * Accepted grammar, per line (tokens separated by spaces/tabs, lines by \n or \r\n):
 *   F                  number of frames (digits only)
 *   per frame: B       number of bodies (digits only)
 *     per body: a body-info line of exactly 10 tokens (the first is the body ID),
 *               a line "25", then 25 joint lines of exactly 12 tokens each.
 *   After the last frame only whitespace may follow.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define JOINTS 25
#define BODY_TOKENS 10
#define JOINT_TOKENS 12

enum { C_BAD = 0, C_WS = 1, C_NL = 2, C_TOK = 3 };
static unsigned char char_class[256];

static void init_classes(void)
{
    const char *tok = "0123456789.-+eE";
    memset(char_class, C_BAD, sizeof(char_class));
    char_class[(unsigned char)' '] = C_WS;
    char_class[(unsigned char)'\t'] = C_WS;
    char_class[(unsigned char)'\r'] = C_WS;
    char_class[(unsigned char)'\n'] = C_NL;
    for (; *tok; tok++)
        char_class[(unsigned char)*tok] = C_TOK;
}

typedef struct {
    const char *p;   /* next unread byte */
    const char *end; /* one past the last byte */
} cursor;

/* Read one line: record the (start, stop) of up to `max` tokens in starts/stops and
 * return the number of tokens on the line, or -1 for a byte outside the grammar, or -2
 * at the end of the data (no line left). The cursor moves past the newline. */
static int read_line(cursor *c, const char **starts, const char **stops, int max)
{
    const char *p = c->p, *end = c->end;
    int n = 0;
    if (p >= end)
        return -2;
    while (p < end) {
        unsigned char k = char_class[(unsigned char)*p];
        if (k == C_TOK) {
            const char *s = p;
            while (p < end && char_class[(unsigned char)*p] == C_TOK)
                p++;
            if (n < max) {
                starts[n] = s;
                stops[n] = p;
            }
            n++;
        } else if (k == C_WS) {
            p++;
        } else if (k == C_NL) {
            p++;
            break;
        } else {
            return -1;
        }
    }
    c->p = p;
    return n;
}

/* A token of 1-18 decimal digits as a non-negative integer, or -1. */
static long long read_count(const char *s, const char *e)
{
    long long v = 0;
    if (e - s < 1 || e - s > 18)
        return -1;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* One line holding a single count token; -1 when it is anything else. */
static long long read_count_line(cursor *c)
{
    const char *s[2], *e[2];
    if (read_line(c, s, e, 2) != 1)
        return -1;
    return read_count(s[0], e[0]);
}

/* Exact powers of ten representable as doubles. */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Convert the token [s, e) to a double exactly as float() does. Plain decimals
 * ([+-]digits[.digits], at most 19 digits, no exponent) whose digits form an integer
 * m <= 2^53 take Clinger's fast path: m and 10^k are exact doubles and one IEEE
 * division rounds m / 10^k correctly, so the result is the correctly rounded value
 * float() returns. Anything else goes through PyOS_string_to_double, the conversion
 * behind float(). Returns 0 on success, -1 when the token is not a number. */
static int to_double(const char *s, const char *e, double *out)
{
    const char *p = s;
    int neg = 0, digits = 0, frac = 0, dot = 0;
    uint64_t m = 0;
    if (p < e && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    for (; p < e; p++) {
        char ch = *p;
        if (ch >= '0' && ch <= '9') {
            if (++digits > 19)
                break;
            m = m * 10 + (uint64_t)(ch - '0');
            frac += dot;
        } else if (ch == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if (p == e && digits > 0 && m <= (UINT64_C(1) << 53) && frac <= 22) {
        double v = (double)m / POW10[frac];
        *out = neg ? -v : v;
        return 0;
    }
    char *stop = NULL;
    double v = PyOS_string_to_double(s, &stop, NULL);
    if (stop != e) { /* not a number, or a number followed by junk */
        PyErr_Clear();
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct {
    char *data;
    size_t used, cap;
} growbuf;

static int grow(growbuf *b, size_t extra)
{
    if (b->used + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->used + extra)
        cap *= 2;
    char *d = PyMem_Realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static PyObject *parse(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "parse() takes the file's bytes");
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(arg); /* NUL-terminated by CPython */
    cursor c = {base, base + PyBytes_GET_SIZE(arg)};
    growbuf frames = {0}, codes = {0}, uniq = {0}, xyz = {0}; /* uniq: (start, len) pairs */
    Py_ssize_t nuniq = 0;
    PyObject *result = NULL;
    const char *s[JOINT_TOKENS], *e[JOINT_TOKENS];
    int ok = 0;

    long long num_frames = read_count_line(&c);
    if (num_frames < 0)
        goto done;
    for (long long f = 0; f < num_frames; f++) {
        long long bodies = read_count_line(&c);
        if (bodies < 0)
            goto done;
        for (long long b = 0; b < bodies; b++) {
            if (read_line(&c, s, e, BODY_TOKENS) != BODY_TOKENS)
                goto done;
            /* the body ID's code: linear search, files have a handful of distinct IDs */
            Py_ssize_t id_start = s[0] - base, id_len = e[0] - s[0];
            int64_t code = 0, fi = f;
            const Py_ssize_t *u = (const Py_ssize_t *)uniq.data;
            while (code < nuniq && !(u[2 * code + 1] == id_len &&
                                     memcmp(base + u[2 * code], s[0], (size_t)id_len) == 0))
                code++;
            if (code == nuniq) {
                Py_ssize_t pair[2] = {id_start, id_len};
                if (grow(&uniq, sizeof(pair)))
                    goto nomem;
                memcpy(uniq.data + uniq.used, pair, sizeof(pair));
                uniq.used += sizeof(pair);
                nuniq++;
            }
            if (grow(&codes, sizeof(code)) || grow(&frames, sizeof(fi)) ||
                grow(&xyz, JOINTS * 3 * sizeof(double)))
                goto nomem;
            memcpy(codes.data + codes.used, &code, sizeof(code));
            codes.used += sizeof(code);
            memcpy(frames.data + frames.used, &fi, sizeof(fi));
            frames.used += sizeof(fi);
            if (read_count_line(&c) != JOINTS)
                goto done;
            double *out = (double *)(xyz.data + xyz.used);
            for (int j = 0; j < JOINTS; j++) {
                if (read_line(&c, s, e, JOINT_TOKENS) != JOINT_TOKENS)
                    goto done;
                for (int k = 0; k < 3; k++)
                    if (to_double(s[k], e[k], &out[3 * j + k]))
                        goto done;
            }
            xyz.used += JOINTS * 3 * sizeof(double);
        }
    }
    /* only whitespace may follow the last frame */
    for (const char *p = c.p; p < c.end; p++) {
        unsigned char k = char_class[(unsigned char)*p];
        if (k != C_WS && k != C_NL)
            goto done;
    }
    ok = 1;
done:
    if (ok) {
        PyObject *names = PyList_New(nuniq);
        const Py_ssize_t *u = (const Py_ssize_t *)uniq.data;
        for (Py_ssize_t i = 0; names && i < nuniq; i++) {
            PyObject *name = PyUnicode_DecodeASCII(base + u[2 * i], u[2 * i + 1], "strict");
            if (!name) {
                Py_CLEAR(names);
                break;
            }
            PyList_SET_ITEM(names, i, name);
        }
        if (names) {
            result = Py_BuildValue("(Ly#y#Ny#)", num_frames,
                                   frames.data ? frames.data : "", (Py_ssize_t)frames.used,
                                   codes.data ? codes.data : "", (Py_ssize_t)codes.used,
                                   names, xyz.data ? xyz.data : "", (Py_ssize_t)xyz.used);
        }
    } else {
        result = Py_NewRef(Py_None);
    }
    PyMem_Free(frames.data);
    PyMem_Free(codes.data);
    PyMem_Free(uniq.data);
    PyMem_Free(xyz.data);
    return result;
nomem:
    PyMem_Free(frames.data);
    PyMem_Free(codes.data);
    PyMem_Free(uniq.data);
    PyMem_Free(xyz.data);
    return PyErr_NoMemory();
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_O,
     "parse(data: bytes) -> None | (num_frames, frames, codes, body_ids, xyz); see ntu_parse.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_skeleton_c",
    "Compiled fast path for NTU .skeleton files (optional; see ntu_parse.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__skeleton_c(void)
{
    init_classes();
    return PyModule_Create(&module);
}
