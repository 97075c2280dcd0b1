/* eddy/eddy.h: every public header of eddy. */
#ifndef EDDY_EDDY_H
#define EDDY_EDDY_H

#include <eddy/common.h>
#include <eddy/alloc.h>
#include <eddy/coro.h>
#include <eddy/reactor.h>
#include <eddy/sync.h>
#include <eddy/io.h>
#include <eddy/http.h>
#include <eddy/db.h>

#endif
