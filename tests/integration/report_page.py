#!/usr/bin/python3
"""Opens an HTML file in headless Chromium as a person would, through the
DevTools protocol over --remote-debugging-pipe (standard library only, no
WebSocket, no download), and prints one JSON object:
  {"requests": [every URL the page asked for, the file itself included],
   "console":  [console messages of level warning or error, uncaught
                exceptions, and log entries such as a CSP violation],
   "values":   [the result of each --eval EXPR, evaluated after the load],
   "screenshot": the PNG's path, "width" / "height": the page's size}
Usage: report_page.py FILE.html SCREENSHOT.png [--eval EXPR]...
Every host name resolves to nothing (--host-resolver-rules), so a request
that did try to leave the file would fail, and still be listed.
Used by tests/integration/report.sh."""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    page, shot = os.path.abspath(args[0]), args[1]
    exprs = []
    i = 2
    while i < len(args):
        if args[i] == "--eval" and i + 1 < len(args):
            exprs.append(args[i + 1])
            i += 2
        else:
            sys.exit("report_page.py: unknown argument %r" % args[i])
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        sys.exit("report_page.py: chromium is not installed (etc/install-deps --check)")
    profile = tempfile.mkdtemp(prefix="report_page.")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def plumb():  # the child's fd 3 reads commands, fd 4 writes replies
        os.dup2(to_browser_r, 3)
        os.dup2(from_browser_w, 4)

    proc = subprocess.Popen(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
         "--user-data-dir=" + profile, "--host-resolver-rules=MAP * ~NOTFOUND",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--no-first-run", "--no-pings",
         "--disable-breakpad", "--disable-domain-reliability", "--mute-audio",
         "--window-size=1100,900", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=plumb, pass_fds=(3, 4))
    os.close(to_browser_r)
    os.close(from_browser_w)
    out = os.fdopen(to_browser_w, "wb", buffering=0)
    inp = os.fdopen(from_browser_r, "rb", buffering=0)
    buf = b""
    events = []
    next_id = [0]

    def read_msg(deadline):
        nonlocal buf
        while b"\0" not in buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([inp], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = inp.read(65536)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            buf += chunk
        msg, buf = buf.split(b"\0", 1)
        return json.loads(msg)

    def call(method, params=None, session=None, timeout=60):
        next_id[0] += 1
        m = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        out.write(json.dumps(m).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            r = read_msg(deadline)
            if r.get("id") == next_id[0]:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            events.append(r)

    def wait_event(name, timeout=60):
        deadline = time.time() + timeout
        while True:
            for k, e in enumerate(events):
                if e.get("method") == name:
                    return events.pop(k)
            events.append(read_msg(deadline))

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for dom in ("Page", "Network", "Runtime", "Log"):
            call(dom + ".enable", session=s)
        seen = []  # every event of the page, kept (wait_event pops what it waits for)
        call("Page.navigate", {"url": "file://" + page}, session=s)
        load = wait_event("Page.loadEventFired")
        seen.append(load)
        # Late events (a deferred request, an error) get a moment to arrive.
        call("Runtime.evaluate", {"expression": "new Promise(r => setTimeout(r, 300))",
                                  "awaitPromise": True}, session=s)
        values = []
        for e in exprs:
            r = call("Runtime.evaluate", {"expression": e, "returnByValue": True}, session=s)
            if "exceptionDetails" in r:
                values.append({"error": r["exceptionDetails"].get("text", "exception")})
            else:
                values.append(r["result"].get("value"))
        size = call("Runtime.evaluate", {
            "expression": "[document.documentElement.scrollWidth, "
                          "document.documentElement.scrollHeight]",
            "returnByValue": True}, session=s)["result"]["value"]
        w, h = max(1100, size[0]), min(max(900, size[1]), 16000)
        call("Emulation.setDeviceMetricsOverride",
             {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}, session=s)
        png = call("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))
        seen += events
        requests, console = [], []
        for e in seen:
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                requests.append(p["request"]["url"])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                console.append("console.%s: %s" % (p["type"], " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
            elif m == "Runtime.exceptionThrown":
                console.append("exception: %s" % p["exceptionDetails"].get("text", ""))
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                console.append("log %s: %s" % (p["entry"]["level"], p["entry"].get("text", "")))
        print(json.dumps({"requests": requests, "console": console, "values": values,
                          "screenshot": shot, "width": w, "height": h}))
        try:
            call("Browser.close", timeout=10)
        except (EOFError, TimeoutError, RuntimeError):
            pass
    finally:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
