/*
 * alloc/strerror.c: eddy_strerror, generated from the EDDY_ERRORS list in
 * eddy/common.h. It sits in the lowest layer so that every layer can name
 * its errors.
 */
#include <eddy/common.h>

EDDY_API const char *eddy_strerror(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case 0:
        return "success";
#define EDDY__NAME_ERROR(name, text)                                                               \
    case name:                                                                                     \
        return #name ": " text;
        EDDY_ERRORS(EDDY__NAME_ERROR)
#undef EDDY__NAME_ERROR
    default:
        return "unknown error";
    }
}
