/*
 * bench/micro/bm_http.c: the HTTP/1.1 request head parser.
 *
 * Cases (param none; counters bytes_per_second, request_bytes):
 *   BM_http_parse_small           a curl-like GET (3 fields, 78 bytes)
 *   BM_http_parse_browser         a browser-sized GET (12 fields, 761
 *                                 bytes: user agent, accepts, cookie)
 * each with impl eddy (the scanner eddy picks on this CPU: AVX2, SSE4.2
 * or scalar) and impl eddy-scalar (the scalar scanner forced), so the gain
 * of the vector scanners is a ratio from the same run. One iteration
 * parses the whole head from a warm buffer, as a server does on each
 * request that arrived in one read; ns_per_op is ns per request.
 */
#include <string.h>

#include <eddy/eddy.h>

#include "bench/micro/gbench.h"
#include "http/internal.h"

#define MAX_FIELDS 32

static const char small_get[] = "GET / HTTP/1.1\r\n"
                                "Host: 127.0.0.1:8080\r\n"
                                "User-Agent: curl/7.88.1\r\n"
                                "Accept: */*\r\n"
                                "\r\n";

static const char browser_get[] =
    "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
    "Host: www.kittyhell.com\r\n"
    "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n"
    "Accept-Language: ja,en-US;q=0.9,en;q=0.8\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "
    "__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "
    "__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com\r\n"
    "Referer: https://www.kittyhell.com/\r\n"
    "Sec-Fetch-Dest: image\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Ch-Ua-Platform: \"macOS\"\r\n"
    "\r\n";

/* Parses text n times with the scanner called impl (NULL: eddy's choice). */
static void parse_loop(struct eddy_bench *b, const char *text, size_t len, const char *impl)
{
    eddy_bench_pause(b);
    if (eddy__http_scan_force(impl) < 0) {
        eddy_bench_fail(b, "scanner not available on this CPU");
        return;
    }
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_request req;
    if (eddy_http_parse_request(text, len, &req, hdrs, MAX_FIELDS, NULL) != (int)len) {
        eddy_bench_fail(b, "the request does not parse");
        return;
    }
    uint64_t n = eddy_bench_iterations(b);
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        int rc = eddy_http_parse_request(text, len, &req, hdrs, MAX_FIELDS, NULL);
        eddy_bench_escape(&rc);
    }
    eddy_bench_pause(b);
    eddy__http_scan_force(NULL);
    eddy_bench_rate_counter(b, "bytes_per_second", (double)len * (double)n);
    eddy_bench_counter(b, "request_bytes", (double)len);
}

static void BM_http_parse_small(struct eddy_bench *b)
{
    parse_loop(b, small_get, sizeof(small_get) - 1, NULL);
}
EDDY_BENCH_OPTS(BM_http_parse_small, .case_name = "http_parse_small", .impl = "eddy");

static void BM_http_parse_small_scalar(struct eddy_bench *b)
{
    parse_loop(b, small_get, sizeof(small_get) - 1, "scalar");
}
EDDY_BENCH_OPTS(BM_http_parse_small_scalar, .case_name = "http_parse_small", .impl = "eddy-scalar");

static void BM_http_parse_browser(struct eddy_bench *b)
{
    parse_loop(b, browser_get, sizeof(browser_get) - 1, NULL);
}
EDDY_BENCH_OPTS(BM_http_parse_browser, .case_name = "http_parse_browser", .impl = "eddy");

static void BM_http_parse_browser_scalar(struct eddy_bench *b)
{
    parse_loop(b, browser_get, sizeof(browser_get) - 1, "scalar");
}
EDDY_BENCH_OPTS(BM_http_parse_browser_scalar, .case_name = "http_parse_browser",
                .impl = "eddy-scalar");
