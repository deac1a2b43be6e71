/* The library's version, and freeing what it hands out as `char *`. */
#include "remodel.h"

#include <stdlib.h>

#define RM_STR_(x) #x
#define RM_STR(x) RM_STR_(x)

const char *rm_version(void)
{
    return RM_STR(REMODEL_VERSION_MAJOR) "." RM_STR(REMODEL_VERSION_MINOR) "." RM_STR(REMODEL_VERSION_PATCH);
}

void rm_free(void *p)
{
    free(p);
}
