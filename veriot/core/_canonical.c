/* The canonical messages of a run of one device's readings, in one call.
 *
 *     reading message = "veriot.reading.v1\n" str16(device) u64(seq) u16(n)
 *                       n * ( str16(name) str16(unit) f64(value) f64(time) )
 *
 * (docs/wire-format.md). veriot.core.canonical.reading_message builds one message in
 * compiled Python: a list of parts, a struct call per record and a join, 0.6 us per
 * record, which made the canonical messages a fifth of a check process's work per reading.
 * This function builds the same bytes straight into each message, from parts that
 * veriot.core.canonical has already checked and encoded: the device's head (domain and
 * str16(device)) and, for each (name, unit), str16(name) str16(unit), from its cache.
 * Whatever it was not handed ready, or does not find as it expects (a record pair not in
 * the cache, a value that is not a finite float, a time below 0, a sequence number or a
 * record count out of range, a reading of another device, a non-tuple of records), makes
 * it return None, and the caller builds the run's messages the checked way, which raises
 * the same errors as ever.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_RECORDS 256

static PyObject *s_device, *s_seq, *s_records, *s_name, *s_unit, *s_value, *s_time;

typedef struct {
    PyObject *pair; /* a strong reference to the cached str16(name) str16(unit) */
    double value;
    double time;
} Row;

static void
release(Row *rows, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(rows[i].pair);
    }
}

/* A new reference to an attribute of `obj`, or NULL (with no error set) when it has none:
 * the caller then hands the reading back rather than failing. */
static PyObject *
attr(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        PyErr_Clear();
    }
    return value;
}

/* A float attribute of `obj` into *out; 0 when it is missing or not exactly a float. */
static int
float_attr(PyObject *obj, PyObject *name, double *out)
{
    PyObject *value = attr(obj, name);
    if (value == NULL) {
        return 0;
    }
    int ok = PyFloat_CheckExact(value);
    if (ok) {
        *out = PyFloat_AS_DOUBLE(value);
    }
    Py_DECREF(value);
    return ok;
}

/* The rows of one reading's records, their count in *count and the message's length in
 * *length; 0 (with no references held and no error set) when the reading is not one
 * this function builds, -1 on a Python error (out of memory). */
static int
read_reading(PyObject *reading, PyObject *device, PyObject *pairs, Py_ssize_t head_len,
             Row *rows, Py_ssize_t *count, unsigned long long *seq, Py_ssize_t *length)
{
    PyObject *dev = attr(reading, s_device);
    if (dev == NULL) {
        return 0;
    }
    int same = dev == device || (PyUnicode_CheckExact(dev) &&
                                 PyUnicode_Compare(dev, device) == 0);
    Py_DECREF(dev);
    if (!same) {
        PyErr_Clear();
        return 0;
    }
    PyObject *seq_obj = attr(reading, s_seq);
    if (seq_obj == NULL) {
        return 0;
    }
    long long value = PyLong_Check(seq_obj) ? PyLong_AsLongLong(seq_obj) : -1;
    Py_DECREF(seq_obj);
    if (value < 0) { /* negative, too large for 63 bits, or not an int */
        PyErr_Clear();
        return 0;
    }
    *seq = (unsigned long long)value;
    PyObject *records = attr(reading, s_records);
    if (records == NULL) {
        return 0;
    }
    Py_ssize_t n = PyTuple_Check(records) ? PyTuple_GET_SIZE(records) : 0;
    if (n < 1 || n > MAX_RECORDS) {
        Py_DECREF(records);
        return 0;
    }
    Py_ssize_t total = head_len + 8 + 2;
    Py_ssize_t held = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *record = PyTuple_GET_ITEM(records, i);
        Row *row = &rows[i];
        if (!float_attr(record, s_value, &row->value) || !float_attr(record, s_time, &row->time) ||
            !isfinite(row->value) || !isfinite(row->time) || row->time < 0) {
            goto unusual;
        }
        PyObject *name = attr(record, s_name);
        if (name == NULL) {
            goto unusual;
        }
        PyObject *unit = attr(record, s_unit);
        if (unit == NULL) {
            Py_DECREF(name);
            goto unusual;
        }
        PyObject *key = PyTuple_Pack(2, name, unit);
        Py_DECREF(name);
        Py_DECREF(unit);
        if (key == NULL) {
            goto failed;
        }
        PyObject *pair = PyDict_GetItemWithError(pairs, key); /* borrowed */
        Py_DECREF(key);
        if (pair == NULL || !PyBytes_CheckExact(pair)) {
            if (PyErr_Occurred()) { /* an unhashable name or unit */
                PyErr_Clear();
            }
            goto unusual;
        }
        Py_INCREF(pair);
        row->pair = pair;
        held++;
        total += PyBytes_GET_SIZE(pair) + 16;
    }
    Py_DECREF(records);
    *count = n;
    *length = total;
    return 1;
unusual:
    release(rows, held);
    Py_DECREF(records);
    return 0;
failed:
    release(rows, held);
    Py_DECREF(records);
    return -1;
}

static void
put_u64(unsigned char *p, unsigned long long v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static PyObject *
reading_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "reading_messages(head, device, readings, pairs) takes 4 arguments");
        return NULL;
    }
    PyObject *head = args[0], *device = args[1], *pairs = args[3];
    if (!PyBytes_Check(head) || !PyUnicode_Check(device) || !PyDict_Check(pairs)) {
        PyErr_SetString(PyExc_TypeError,
                        "reading_messages takes (bytes, str, a sequence of readings, dict)");
        return NULL;
    }
    /* A tuple of its own: nothing that runs meanwhile can change what it holds. */
    PyObject *readings = PySequence_Tuple(args[2]);
    if (readings == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(readings);
    Py_ssize_t head_len = PyBytes_GET_SIZE(head);
    PyObject *out = PyList_New(count);
    Row *rows = PyMem_Malloc(sizeof(Row) * MAX_RECORDS);
    if (out == NULL || rows == NULL) {
        PyErr_NoMemory();
        goto failed;
    }
    for (Py_ssize_t r = 0; r < count; r++) {
        Py_ssize_t n = 0, length = 0;
        unsigned long long seq = 0;
        int got = read_reading(PyTuple_GET_ITEM(readings, r), device, pairs, head_len,
                               rows, &n, &seq, &length);
        if (got < 0) {
            goto failed;
        }
        if (got == 0) {
            Py_DECREF(out);
            out = Py_NewRef(Py_None);
            break;
        }
        PyObject *message = PyBytes_FromStringAndSize(NULL, length);
        if (message == NULL) {
            release(rows, n);
            goto failed;
        }
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(message);
        memcpy(p, PyBytes_AS_STRING(head), (size_t)head_len);
        p += head_len;
        put_u64(p, seq);
        p[8] = (unsigned char)(n >> 8);
        p[9] = (unsigned char)(n & 0xff);
        p += 10;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t pair_len = PyBytes_GET_SIZE(rows[i].pair);
            memcpy(p, PyBytes_AS_STRING(rows[i].pair), (size_t)pair_len);
            p += pair_len;
            PyFloat_Pack8(rows[i].value, (char *)p, 0);
            PyFloat_Pack8(rows[i].time, (char *)p + 8, 0);
            p += 16;
        }
        release(rows, n);
        PyList_SET_ITEM(out, r, message);
    }
    PyMem_Free(rows);
    Py_DECREF(readings);
    return out;
failed:
    PyMem_Free(rows);
    Py_XDECREF(out);
    Py_DECREF(readings);
    return NULL;
}

static PyMethodDef methods[] = {
    {"reading_messages", (PyCFunction)(void (*)(void))reading_messages, METH_FASTCALL,
     "reading_messages(head, device, readings, pairs) -> list[bytes] | None\n\n"
     "The canonical message of each reading of `device` (whose encoded head is `head`),\n"
     "with each record's str16(name) str16(unit) from `pairs`, keyed by (name, unit);\n"
     "None when any reading is not one built this way (see veriot.core.canonical)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "veriot.core._canonical",
    .m_doc = "Canonical reading messages of a run in one call (see veriot.core.canonical).",
    .m_size = -1, /* the interned attribute names are process-wide */
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__canonical(void)
{
    s_device = PyUnicode_InternFromString("device");
    s_seq = PyUnicode_InternFromString("seq");
    s_records = PyUnicode_InternFromString("records");
    s_name = PyUnicode_InternFromString("name");
    s_unit = PyUnicode_InternFromString("unit");
    s_value = PyUnicode_InternFromString("value");
    s_time = PyUnicode_InternFromString("time");
    if (!s_device || !s_seq || !s_records || !s_name || !s_unit || !s_value || !s_time) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
