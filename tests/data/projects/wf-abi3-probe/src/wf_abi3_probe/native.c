/* Built on glibc >= 2.36 (Debian 12, 13), token() calls arc4random, which only exists since
 * glibc 2.36: the extension then needs symbol version GLIBC_2.36 and does not load on Debian 11.
 * Built on an older glibc it uses random() and loads everywhere. That asymmetry is what the
 * probe has to measure. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 36))
#define WF_TOKEN() ((unsigned long)arc4random())
#define WF_SOURCE "arc4random"
#else
#define WF_TOKEN() ((unsigned long)random())
#define WF_SOURCE "random"
#endif

static PyObject *token(PyObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLong(WF_TOKEN());
}

static PyObject *built_with(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(WF_SOURCE);
}

static PyMethodDef methods[] = {
    {"token", token, METH_NOARGS, "A random number."},
    {"built_with", built_with, METH_NOARGS, "Which libc function token() calls."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
