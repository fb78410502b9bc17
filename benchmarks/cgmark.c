/* Valgrind client requests and named trampolines for callgrind_bench.py.
 *
 * start/stop/zero/dump drive callgrind from Python around the measured loop, so that
 * interpreter start-up, imports and warm-up are never counted. layer(i, fn, *args) calls
 * fn(*args) through cgmark_layer_<i>, a C function callgrind reports by name: its
 * inclusive cost is what fn cost. Outside valgrind every request is a no-op.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <valgrind/callgrind.h>

static PyObject *cg_start(PyObject *self, PyObject *unused) {
    CALLGRIND_START_INSTRUMENTATION;
    Py_RETURN_NONE;
}

static PyObject *cg_stop(PyObject *self, PyObject *unused) {
    CALLGRIND_STOP_INSTRUMENTATION;
    Py_RETURN_NONE;
}

static PyObject *cg_zero(PyObject *self, PyObject *unused) {
    CALLGRIND_ZERO_STATS;
    Py_RETURN_NONE;
}

static PyObject *cg_dump(PyObject *self, PyObject *args) {
    const char *label;
    if (!PyArg_ParseTuple(args, "s", &label)) return NULL;
    CALLGRIND_DUMP_STATS_AT(label);
    Py_RETURN_NONE;
}

static PyObject *cg_on_valgrind(PyObject *self, PyObject *unused) {
    return PyLong_FromLong((long)RUNNING_ON_VALGRIND);
}

#define LAYER(n) \
    __attribute__((noinline)) PyObject *cgmark_layer_##n(PyObject *fn, PyObject *args) { \
        PyObject *result = PyObject_Call(fn, args, NULL); \
        __asm__ volatile("" ::: "memory"); \
        return result; \
    }
LAYER(0) LAYER(1) LAYER(2) LAYER(3) LAYER(4) LAYER(5) LAYER(6) LAYER(7)

typedef PyObject *(*layer_fn)(PyObject *, PyObject *);
static layer_fn layers[8] = {cgmark_layer_0, cgmark_layer_1, cgmark_layer_2, cgmark_layer_3,
                             cgmark_layer_4, cgmark_layer_5, cgmark_layer_6, cgmark_layer_7};

static PyObject *cg_layer(PyObject *self, PyObject *args) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 2) {
        PyErr_SetString(PyExc_TypeError, "layer(index, fn, *args)");
        return NULL;
    }
    long index = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
    if (index < 0 || index > 7) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "layer index must be 0..7");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 2, n);
    if (rest == NULL) return NULL;
    PyObject *result = layers[index](PyTuple_GET_ITEM(args, 1), rest);
    Py_DECREF(rest);
    return result;
}

static PyMethodDef methods[] = {
    {"start", cg_start, METH_NOARGS, "CALLGRIND_START_INSTRUMENTATION"},
    {"stop", cg_stop, METH_NOARGS, "CALLGRIND_STOP_INSTRUMENTATION"},
    {"zero", cg_zero, METH_NOARGS, "CALLGRIND_ZERO_STATS"},
    {"dump", cg_dump, METH_VARARGS, "CALLGRIND_DUMP_STATS_AT(label)"},
    {"on_valgrind", cg_on_valgrind, METH_NOARGS, "RUNNING_ON_VALGRIND"},
    {"layer", cg_layer, METH_VARARGS, "layer(index, fn, *args): fn(*args) through cgmark_layer_<index>"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cgmark", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cgmark(void) { return PyModule_Create(&module); }
