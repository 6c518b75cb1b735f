/* Typed wrappers over greenlet's C API, so the Cython side can pass plain
 * PyObject* (greenlet's macros expect PyGreenlet*, and newer compilers reject
 * the implicit conversion). */
#ifndef GMP_GREENLET_H
#define GMP_GREENLET_H
#include <Python.h>
#include "greenlet.h"

static inline int gmp_greenlet_import(void) {
    PyGreenlet_Import();
    return _PyGreenlet_API == NULL ? -1 : 0;
}
static inline PyObject *gmp_greenlet_new(PyObject *run, PyObject *parent) {
    return (PyObject *)PyGreenlet_New(run, (PyGreenlet *)parent);
}
/* The running greenlet (a new reference). */
static inline PyObject *gmp_greenlet_getcurrent(void) {
    return (PyObject *)PyGreenlet_GetCurrent();
}
static inline PyObject *gmp_greenlet_switch(PyObject *g, PyObject *args, PyObject *kwargs) {
    return PyGreenlet_Switch((PyGreenlet *)g, args, kwargs);
}
#endif
