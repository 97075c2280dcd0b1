/*
 * bench/micro/bm_coro_boost.cc: the boost.context peer of BM_switch (case
 * "switch", impl "boost"), in C++ because fcontext's header is C++.
 *
 * Same shape as bench/micro/bm_coro.c: two fcontexts A and B on 64 KiB
 * stacks from eddy's pool both run boost_hop(), which jumps to the other
 * side `rounds` times from one call site; one jump is one iteration. Each
 * side is entered once and parks before the clock starts.
 *
 * What boost does per jump that eddy's BM_switch does not: it always saves
 * and loads MXCSR and the x87 control word (so BM_switch_fpu is the
 * like-for-like eddy figure), and jump_fcontext lives in
 * libboost_context.so, so each jump also goes through the PLT. Both are
 * what a user of boost.context pays, so both are measured, not removed.
 */
#include <boost/context/detail/fcontext.hpp>

#include <eddy/alloc.h>

#include "bench/micro/gbench.h"

namespace fctx = boost::context::detail;

namespace {

struct boost_duo {
    fctx::fcontext_t main; // where A returns when it is done
    fctx::fcontext_t b;    // B, parked; A's first peer
    uint64_t rounds;
};

// The one call site of both sides. Returns the peer's handle after the
// last jump.
__attribute__((noinline)) fctx::fcontext_t boost_hop(fctx::fcontext_t peer, uint64_t rounds)
{
    for (uint64_t i = 0; i < rounds; i++)
        peer = fctx::jump_fcontext(peer, nullptr).fctx;
    return peer;
}

// A parks with the benchmark thread, then ping-pongs with B, then jumps
// back to the benchmark thread for good.
void boost_side_a(fctx::transfer_t t)
{
    auto *d = static_cast<boost_duo *>(t.data);
    t = fctx::jump_fcontext(t.fctx, nullptr);
    d->main = t.fctx;
    boost_hop(d->b, d->rounds);
    fctx::jump_fcontext(d->main, nullptr);
}

// B parks with the benchmark thread; the first jump that reaches it after
// that comes from A, whose handle it carries.
void boost_side_b(fctx::transfer_t t)
{
    auto *d = static_cast<boost_duo *>(t.data);
    t = fctx::jump_fcontext(t.fctx, nullptr);
    // B's last jump inside boost_hop goes to A, which is then done and
    // never comes back: B stays parked there. The jump after it only
    // guards against a miscount.
    fctx::fcontext_t peer = boost_hop(t.fctx, d->rounds);
    fctx::jump_fcontext(peer, nullptr);
}

} // namespace

static void BM_switch_boost(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_stack_pool *pool;
    struct eddy_stack sa, sb;
    if (eddy_stack_pool_create(nullptr, &pool) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_create failed");
        return;
    }
    if (eddy_stack_pool_acquire(pool, EDDY_STACK_DEFAULT_BYTES, &sa) < 0 ||
        eddy_stack_pool_acquire(pool, EDDY_STACK_DEFAULT_BYTES, &sb) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_acquire failed");
        eddy_stack_pool_destroy(pool);
        return;
    }
    boost_duo d{nullptr, nullptr, (n + 1) / 2};
    // make_fcontext takes the top of the stack (stacks grow down).
    fctx::fcontext_t a = fctx::make_fcontext(static_cast<char *>(sa.lo) + sa.size_bytes,
                                             sa.size_bytes, boost_side_a);
    fctx::fcontext_t bb = fctx::make_fcontext(static_cast<char *>(sb.lo) + sb.size_bytes,
                                              sb.size_bytes, boost_side_b);
    a = fctx::jump_fcontext(a, &d).fctx;
    d.b = fctx::jump_fcontext(bb, &d).fctx;
    eddy_bench_resume(b);

    fctx::jump_fcontext(a, nullptr);

    eddy_bench_pause(b);
    eddy_stack_pool_destroy(pool);
}
EDDY_BENCH_OPTS(BM_switch_boost, 0, {0}, 0, "switch", "boost");
