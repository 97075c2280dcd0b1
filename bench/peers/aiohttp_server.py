"""aiohttp as the serve suite's peer: /plaintext and /json with the bytes
eddy-httpd sends, and /delay?ms=N. Run with Debian's python3:
    /usr/bin/python3 bench/peers/aiohttp_server.py PORT [--uvloop]
"""
import asyncio
import json
import sys

from aiohttp import web


async def plaintext(request):
    return web.Response(text="Hello, World!", content_type="text/plain")


async def json_handler(request):
    # Compact separators: the same 27 bytes as eddy-httpd and nginx send.
    return web.json_response({"message": "Hello, World!"},
                             dumps=lambda o: json.dumps(o, separators=(",", ":")))


async def delay(request):
    await asyncio.sleep(int(request.query.get("ms", "0")) / 1000)
    return web.Response(text="OK")


def main():
    port = int(sys.argv[1])
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    app = web.Application()
    app.router.add_get("/plaintext", plaintext)
    app.router.add_get("/json", json_handler)
    app.router.add_get("/delay", delay)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
