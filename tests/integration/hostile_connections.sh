#!/bin/bash
# Connection-level abuse of a real sweepd: lines over the 1 MiB limit, binary
# garbage, half a line and then silence, empty lines and CRLF, pipelined
# requests, a thousand connections at once, connect-and-vanish clients,
# clients that close before the reply, a client that never reads its
# replies, and watchers that hang up mid-stream. After each: the daemon answers ping on a new connection, and at the
# end its open file descriptors are back to where they started and its memory
# stayed bounded. Then a second daemon with idle_timeout = 1 s and the fake
# worker (tests/aux/fake_worker.c): idle connections and a client trickling a
# partial line are closed after the limit while a watching client stays
# connected and keeps receiving events, a fresh client is served afterwards,
# and a burst of 300 connects made while the daemon cannot accept (SIGSTOP)
# all succeed (listen backlog). Loopback Unix socket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
rel_start_daemon --workers 1 || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts and answers ping"

cat >"$T/conns.py" <<'EOF'
import errno, json, os, random, resource, select, socket, sys, time
sys.path.insert(0, os.environ["REL_DIR"])
from reliability_client import Conn, rpc, ping_ok, proc_fds, proc_rss_kb

SOCK, PID = sys.argv[1], int(sys.argv[2])
MiB = 1 << 20

def result(good, name, detail=""):
    print(("PASS " if good else "FAIL ") + name + ("" if good or not detail else ": " + detail),
          flush=True)

def is_err(r, pattern=None):
    import re
    if not (isinstance(r, dict) and r.get("ok") is False and isinstance(r.get("error"), dict)):
        return False
    text = "%s: %s" % (r["error"].get("code"), r["error"].get("message"))
    return pattern is None or re.search(pattern, text) is not None

def ping_soon(limit=20.0):
    """Ping until answered: closed connections may still count against the
    daemon's connection limit for a moment after the clients are gone."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if ping_ok(SOCK, 5):
            return True
        time.sleep(0.2)
    return False
fds0 = proc_fds(PID)
rss0 = proc_rss_kb(PID)
print("INFO daemon fds at start %d, rss %d KiB" % (fds0, rss0))

# 1. A line over 1 MiB, then a ping on the same connection.
c = Conn(SOCK, 20)
c.send(b"a" * (MiB + MiB // 2) + b"\n")
r = c.reply(20)
result(is_err(r, r"(?i)too long|too big|too large|limit|MiB|bytes|too_big"),
       "line of 1.5 MiB -> error naming the length limit", json.dumps(r)[:200])
c.send(b'{"op":"ping"}\n')
r2 = c.reply(10)
result(isinstance(r2, dict) and r2.get("ok") is True,
       "same connection still answers ping after the long line", json.dumps(r2))
c.close()
result(ping_ok(SOCK), "long line -> ping still answered")

# 2. A valid JSON request just over the limit (a huge string member).
c = Conn(SOCK, 20)
c.send(b'{"op":"ping","pad":"' + b"x" * MiB + b'"}\n')
r = c.reply(20)
result(is_err(r, r"(?i)too long|too big|too large|limit|MiB|bytes|too_big"),
       "1 MiB JSON request -> error naming the length limit", json.dumps(r)[:200])
c.close()
result(ping_ok(SOCK), "1 MiB JSON request -> ping still answered")

# 3. Just under the limit: answered (whatever the answer).
c = Conn(SOCK, 20)
c.send(b'{"op":"ping","pad":"' + b"x" * (MiB - 100) + b'"}\n')
r = c.reply(20)
result(isinstance(r, dict) and "ok" in r, "request just under 1 MiB is answered", json.dumps(r)[:200])
c.close()

# 4. Binary garbage: 64 KiB of random bytes in 8 lines.
rnd = random.Random(8)
garbage = bytearray(rnd.getrandbits(8) for _ in range(64 * 1024))
garbage = garbage.replace(b"\n", b"x").replace(b"\r", b"x")
lines = [bytes(garbage[i * 8192:(i + 1) * 8192]) for i in range(8)]
c = Conn(SOCK, 20)
c.send(b"\n".join(lines) + b"\n")
replies = [c.reply(10) for _ in range(8)]
c.close()
result(all(is_err(x, r"(?i)json|pars|invalid|utf|column") for x in replies),
       "8 lines of binary garbage -> 8 parse error replies",
       json.dumps([x if x is None else (x.get("error") or x) for x in replies])[:300])
result(ping_ok(SOCK), "binary garbage -> ping still answered")
c = Conn(SOCK, 10)
c.send(bytes(rnd.getrandbits(8) for _ in range(4096)))  # no newline at all
c.close()
result(ping_ok(SOCK), "garbage without a newline, then hang-up -> ping still answered")

# 5. Half a line, then silence: others are served meanwhile; the rest completes it.
half = Conn(SOCK, 10)
half.send(b'{"op":"pi')
t0 = time.monotonic()
served = 0
while time.monotonic() - t0 < 2.5:
    served += ping_ok(SOCK, 5)
    time.sleep(0.25)
result(served >= 5, "pings answered while another client sits on half a line (%d)" % served)
half.send(b'ng"}\n')
r = half.reply(10)
result(isinstance(r, dict) and r.get("ok") is True, "the half line completed later is answered",
       json.dumps(r))
half.close()

# 6. Empty lines and CRLF.
c = Conn(SOCK, 10)
c.send(b'\n\n\r\n{"op":"ping"}\r\n\n')
r = c.reply(10)
extra = c.reply(1)
result(isinstance(r, dict) and r.get("ok") is True and extra is None,
       "empty lines are skipped and a CRLF request is answered once", json.dumps([r, extra]))
c.close()

# 7. 200 pipelined pings in one write: 200 ok replies.
c = Conn(SOCK, 20)
c.send(b'{"op":"ping"}\n' * 200)
got = [c.reply(10) for _ in range(200)]
c.close()
result(all(isinstance(x, dict) and x.get("ok") is True for x in got),
       "200 pipelined pings -> 200 replies")

# 8. A thousand connections at once.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
conns, refused = [], 0
for i in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    for attempt in range(50):
        try:
            s.connect(SOCK)
            break
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNREFUSED) and attempt < 49:
                time.sleep(0.02)
                continue
            refused += 1
            s.close()
            s = None
            break
    if s is not None:
        conns.append(s)
for s in conns:
    try:
        s.sendall(b'{"op":"ping"}\n')
    except OSError:
        pass
answered_ok = answered_err = closed = silent = 0
other = []
deadline = time.monotonic() + 30
pending = {s: b"" for s in conns}
while pending and time.monotonic() < deadline:
    rl, _, _ = select.select(list(pending)[:1000], [], [], 1.0)
    for s in rl:
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:
            closed += 1
            del pending[s]
            continue
        pending[s] += d
        if b"\n" in pending[s]:
            ln = pending[s].split(b"\n", 1)[0]
            try:
                r = json.loads(ln)
            except ValueError:
                r = None
            if isinstance(r, dict) and r.get("ok") is True:
                answered_ok += 1
            elif is_err(r, r"(?i)connection|too many|busy|limit"):
                answered_err += 1
            else:
                other.append(ln[:100])
            del pending[s]
silent = len(pending)
print("INFO 1000 connections: %d connected, %d refused at connect, %d ping ok, %d error replies, "
      "%d closed without reply, %d silent" % (len(conns), refused, answered_ok, answered_err,
                                                closed, silent))
result(answered_ok + answered_err == 1000 and not other,
       "1000 simultaneous connections: each gets a pong or an error naming the connection limit",
       "ok %d, err %d, closed %d, silent %d, refused %d, other %s" % (
           answered_ok, answered_err, closed, silent, refused, other[:3]))
fds_busy = proc_fds(PID)
for s in conns:
    s.close()
result(ping_soon(), "after 1000 connections -> ping still answered")

# 9. Connect and vanish, 300 times; send-then-close before the reply, 100 times.
for i in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    s.close()
for i in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    try:  # right after the 1000 above the daemon may still be at its limit: busy, closed
        s.sendall(b'{"op":"status"}\n{"op":"ping"}\n')
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
result(ping_soon(), "300 connect-and-close + 100 close-before-reply -> ping still answered")

# 10. A client that never reads: pipeline status requests for 4 s.
lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lazy.connect(SOCK)
lazy.setblocking(False)
sent = 0
req = b'{"op":"status"}\n' * 64
t0 = time.monotonic()
pings_during = 0
max_rss = proc_rss_kb(PID)
dropped = False
while time.monotonic() - t0 < 4:
    try:
        sent += lazy.send(req)
    except BlockingIOError:
        time.sleep(0.05)
    except OSError:
        dropped = True
        break
    if int((time.monotonic() - t0) * 10) % 5 == 0:
        pings_during += ping_ok(SOCK, 5)
        max_rss = max(max_rss, proc_rss_kb(PID))
max_rss = max(max_rss, proc_rss_kb(PID))
print("INFO never-reading client: sent %d bytes of requests, dropped by the daemon: %s, "
      "daemon rss max %d KiB (start %d)" % (sent, dropped, max_rss, rss0))
result(pings_during > 0 and ping_ok(SOCK),
       "daemon serves others while a client never reads its replies")
result(max_rss - rss0 < 128 * 1024,
       "daemon memory stays bounded with a client that never reads (+%d KiB)" % (max_rss - rss0))
lazy.close()

# 11. Watchers that vanish: 50 clients start watching a running job and hang
# up at once or after the first event; one more watches it to its end.
TRAIN = sys.argv[3]
r = rpc(SOCK, {"op": "submit", "job": {
    "name": "watched", "data": {"train": TRAIN},
    "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
    "strategy": "grid", "space": {"lr": [0.1, 0.2]}, "fixed": {"epochs": 3}, "seed": 3}})
job = r.get("job") if isinstance(r, dict) else None
result(isinstance(job, int), "a job to watch is accepted", json.dumps(r))
if isinstance(job, int):
    for i in range(50):
        w = Conn(SOCK, 10)
        w.send_obj({"op": "watch", "job": job})
        if i % 2:
            w.line(5)
        w.close()
    result(ping_soon(), "50 watchers hanging up mid-stream -> ping still answered")
    w = Conn(SOCK, 30)
    w.send_obj({"op": "watch", "job": job})
    lines, end_seen = 0, False
    while True:
        ln = w.line(30)
        if ln is None:
            break
        lines += 1
        try:
            ev = json.loads(ln)
        except ValueError:
            continue
        if ev.get("event") == "end":
            end_seen = True
            break
    w.close()
    result(end_seen, "a watcher that stays gets the stream to the job's end (%d lines)" % lines)

time.sleep(1.0)
ping_ok(SOCK)
fds1 = proc_fds(PID)
print("INFO daemon fds at end %d (start %d, with 1000 clients %d)" % (fds1, fds0, fds_busy))
result(fds1 <= fds0 + 2, "daemon's open descriptors back to the start (%d -> %d)" % (fds0, fds1))
EOF

REL_DIR=$REL_DIR "$REL_PY" "$T/conns.py" "$SOCK" "$DPID" "$T/data/train" >"$T/conns.out" 2>&1
is "the connection client ran to its end (exit 0)" "$?" 0
while IFS= read -r line; do
    case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        *) echo "# $line" ;;
    esac
done <"$T/conns.out"
check "sweepd still running" kill -0 "$DPID"
check "sweepd exits 0 on shutdown" rel_stop_daemon

# ---- Part 2: idle connections and the listen backlog ----------------------
# One trial that runs until cancelled (10000 epochs of 0.2 s, two progress
# events each) gives the watcher a steady stream.
mkdir -p "$T/idle-data"
echo '{"default":{"sleep":0.2,"progress":2}}' >"$T/idle-data/fake.json"
printf 'idle_timeout = 1\ntick = 0.05\n' >"$T/idle.conf"
DB=$T/idle.db STATE=$T/idle-state SWEEPD_WORKER=$BUILD/tests/fake_worker \
    rel_start_daemon --workers 1 --config "$T/idle.conf" ||
    { not_ok "sweepd with idle_timeout = 1 starts"; done_testing; }
ok "sweepd with idle_timeout = 1 starts and answers ping"

cat >"$T/idle.py" <<'EOF'
import errno, json, os, resource, select, signal, socket, sys, time
sys.path.insert(0, os.environ["REL_DIR"])
from reliability_client import rpc, ping_ok

SOCK, PID, DATA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
N_IDLE, N_BURST = 250, 300
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))

def result(good, name, detail=""):
    print(("PASS " if good else "FAIL ") + name + ("" if good or not detail else ": " + detail),
          flush=True)

def parse(ln):
    try:
        return json.loads(ln)
    except ValueError:
        return {"_raw": ln[:200].decode("utf-8", "replace")}

def code(r):
    if isinstance(r, dict) and r.get("ok") is False and isinstance(r.get("error"), dict):
        return r["error"].get("code")
    return None

def events(lines):
    return sum(1 for x in lines if isinstance(x, dict) and "event" in x)

def connect(path):
    """A connected socket; retries while the backlog is full (EAGAIN)."""
    for attempt in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if e.errno != errno.EAGAIN or attempt == 199:
                raise
            time.sleep(0.05)

class Peer:
    """Collects what one socket receives: its lines, and whether it was closed."""
    def __init__(self, s):
        s.setblocking(False)  # (a timeout would make recv wait for data first)
        self.s, self.buf, self.lines, self.eof = s, b"", [], False
    def pump(self):
        while not self.eof:
            try:
                d = self.s.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                d = b""
            if not d:
                self.eof = True
                return
            self.buf += d
            while b"\n" in self.buf:
                ln, self.buf = self.buf.split(b"\n", 1)
                self.lines.append(parse(ln))

def pump_until(peer, done, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end and not peer.eof and not done():
        select.select([peer.s], [], [], 0.5)
        peer.pump()

# A running job and a client watching it.
r = rpc(SOCK, {"op": "submit", "job": {
    "name": "long", "data": {"train": DATA},
    "model": {"arch": "resnet18", "weights": None},
    "strategy": "grid", "space": {"lr": [0.1]}, "fixed": {"epochs": 10000}, "seed": 5}})
job = r.get("job") if isinstance(r, dict) else None
result(isinstance(job, int), "a long-running job is accepted", json.dumps(r))
if not isinstance(job, int):
    sys.exit(0)
watcher = Peer(connect(SOCK))
watcher.s.sendall(json.dumps({"op": "watch", "job": job}).encode() + b"\n")
pump_until(watcher, lambda: events(watcher.lines) > 0)
ack = watcher.lines[0] if watcher.lines else None
result(isinstance(ack, dict) and ack.get("ok") is True and ack.get("watching") is True
       and events(watcher.lines) > 0,
       "the watcher is acknowledged and receives events", json.dumps(watcher.lines[:3]))

# A client trickling a partial line, one byte every 0.1 s (ten times within
# the limit), and N_IDLE clients that send nothing at all.
trickler = Peer(connect(SOCK))
trickler.s.sendall(b'{"op":"pi')
idle = [Peer(connect(SOCK)) for _ in range(N_IDLE)]
print("INFO %d idle connections open, plus a watcher and a trickler" % len(idle))

trickled, trickle_error, next_byte = 0, None, 0.0
end = time.monotonic() + 120  # a generous bound: each should go after about 1 s
while time.monotonic() < end:
    if not trickler.eof and trickle_error is None and time.monotonic() >= next_byte:
        try:
            trickler.s.send(b"n")
            trickled += 1
        except OSError as e:
            trickle_error = errno.errorcode.get(e.errno, str(e.errno))
        next_byte = time.monotonic() + 0.1
    open_peers = [p for p in idle + [trickler, watcher] if not p.eof]
    rl, _, _ = select.select([p.s for p in open_peers], [], [], 0.1)
    for p in open_peers:
        if p.s in rl:
            p.pump()
    if all(p.eof for p in idle) and (trickler.eof or trickle_error):
        break
trickler.pump()  # what arrived before a send failed
closed = sum(p.eof for p in idle)
told = sum(1 for p in idle if [code(x) for x in p.lines] == ["idle_timeout"])
msg = next((x["error"].get("message", "") for p in idle for x in p.lines
            if code(x) == "idle_timeout"), "")
print("INFO idle clients closed: %d of %d, %d told idle_timeout (\"%s\"); the trickler sent "
      "%d bytes, closed %s, send error %s" % (closed, len(idle), told, msg, trickled,
                                              trickler.eof, trickle_error))
result(closed == N_IDLE, "all %d idle connections are closed by the daemon" % N_IDLE,
       "%d closed" % closed)
result(told == N_IDLE, "each got one error line, code idle_timeout, before the close",
       "%d told; lines of the first others: %s" % (
           told, [p.lines for p in idle if [code(x) for x in p.lines] != ["idle_timeout"]][:3]))
result("idle_timeout" in msg and "1 s" in msg, "the message names idle_timeout and the limit",
       msg)
result((trickler.eof or trickle_error is not None) and
       [code(x) for x in trickler.lines] == ["idle_timeout"],
       "a client trickling a partial line is closed too (an unfinished line is not activity)",
       "lines %s, eof %s, send error %s" % (trickler.lines, trickler.eof, trickle_error))
result(not watcher.eof and not any(code(x) for x in watcher.lines),
       "the watching client is still connected and got no error", json.dumps(watcher.lines[-3:]))

r = rpc(SOCK, {"op": "ping"})
result(isinstance(r, dict) and r.get("ok") is True and r.get("pong") is True,
       "a fresh client is served afterwards (ping ok, not busy)", json.dumps(r))

before = events(watcher.lines)
pump_until(watcher, lambda: events(watcher.lines) > before)
result(events(watcher.lines) > before and not watcher.eof,
       "the watcher keeps receiving events after the idle ones were closed (%d -> %d)" %
       (before, events(watcher.lines)))

# A burst of N_BURST connects while the daemon cannot accept (stopped): they
# wait in the listen backlog. A non-blocking connect fails with EAGAIN when
# the backlog is full, so each one must succeed at once.
somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
if somaxconn <= N_BURST:
    print("SKIP a burst of %d connects: net.core.somaxconn is only %d" % (N_BURST, somaxconn))
else:
    socks, failed = [], []
    os.kill(PID, signal.SIGSTOP)
    try:
        for i in range(N_BURST):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            e = s.connect_ex(SOCK)
            if e == 0:
                socks.append(s)
            else:
                failed.append(errno.errorcode.get(e, str(e)))
                s.close()
    finally:
        os.kill(PID, signal.SIGCONT)
    result(not failed, "a burst of %d connects while the daemon is not accepting: every "
           "connect succeeds (listen backlog)" % N_BURST,
           "%d failed: %s" % (len(failed), sorted(set(failed))))
    peers = [Peer(s) for s in socks]
    for p in peers:
        try:
            p.s.sendall(b'{"op":"ping"}\n')
        except OSError:
            pass  # refused as busy and closed already: its reply is still readable
    end = time.monotonic() + 60
    while time.monotonic() < end:
        waiting = [p for p in peers if not p.lines and not p.eof]
        if not waiting:
            break
        rl, _, _ = select.select([p.s for p in waiting], [], [], 0.5)
        for p in waiting:
            if p.s in rl:
                p.pump()
    first = [p.lines[0] if p.lines else None for p in peers]
    pong = sum(1 for x in first if isinstance(x, dict) and x.get("ok") is True)
    busy = sum(1 for x in first if code(x) == "busy")
    late = sum(1 for x in first if code(x) == "idle_timeout")  # a very slow machine
    print("INFO burst: %d pong, %d busy, %d idle_timeout, %d other" % (
        pong, busy, late, len(first) - pong - busy - late))
    result(pong + busy + late == len(socks) and pong > 0,
           "each connection of the burst is answered (pong, or busy past max_connections)",
           "pong %d busy %d idle %d of %d" % (pong, busy, late, len(socks)))
    for p in peers:
        p.s.close()
    result(ping_ok(SOCK), "after the burst -> ping still answered")

# Clients that ask for a large reply and never read it: one keeps its side
# open, one closes it at once (the daemon is then draining its replies).
# Neither may keep its slot: once the idle clock runs out the daemon closes
# them, before the reply was delivered (what they read afterwards is cut).
big = rpc(SOCK, {"op": "submit", "job": {
    "name": "big", "data": {"train": DATA},
    "model": {"arch": "resnet18", "weights": None}, "strategy": "grid",
    "space": {"lr": [round(0.0001 * (i + 1), 6) for i in range(3000)]},
    "fixed": {"epochs": 1}, "seed": 6}})
big_job = big.get("job") if isinstance(big, dict) else None
result(isinstance(big_job, int), "a job of 3000 trials is accepted (its status reply is large)",
       json.dumps(big)[:200])
if isinstance(big_job, int):
    hoarders = []
    for half_close in (False, True):
        s = connect(SOCK)
        s.sendall(json.dumps({"op": "status", "job": big_job}).encode() + b"\n")
        if half_close:
            s.shutdown(socket.SHUT_WR)
        hoarders.append(s)
    gone = {}
    end = time.monotonic() + 120
    while time.monotonic() < end and len(gone) < len(hoarders):
        p = select.poll()
        for s in hoarders:
            if s not in gone:
                p.register(s, select.POLLRDHUP | select.POLLHUP)
        for fd, ev in p.poll(200):
            gone[next(s for s in hoarders if s.fileno() == fd)] = ev
    got = []
    for s in hoarders:
        s.setblocking(True)
        s.settimeout(10)
        data = b""
        while True:
            try:
                d = s.recv(1 << 20)
            except OSError:
                break
            if not d:
                break
            data += d
        got.append(data)
        s.close()
    print("INFO non-reading clients: closed by the daemon %d of 2; bytes received %s" % (
        len(gone), [len(d) for d in got]))
    result(len(gone) == 2 and all(b"\n" not in d for d in got),
           "clients not reading a large reply are closed (open and half-closed), reply cut",
           "closed %d, received %s" % (len(gone), [len(d) for d in got]))
    r = rpc(SOCK, {"op": "cancel", "job": big_job})
    result(isinstance(r, dict) and r.get("ok") is True, "the large job is cancelled",
           json.dumps(r))

# Cancelling the job ends the stream with its "end" event.
r = rpc(SOCK, {"op": "cancel", "job": job})
result(isinstance(r, dict) and r.get("ok") is True, "the watched job is cancelled", json.dumps(r))
is_end = lambda x: isinstance(x, dict) and x.get("event") == "end"
pump_until(watcher, lambda: any(is_end(x) for x in watcher.lines))
result(any(is_end(x) for x in watcher.lines),
       "the watcher, connected all along, gets the job's end event",
       json.dumps(watcher.lines[-3:]))
watcher.s.close()
EOF

REL_DIR=$REL_DIR "$REL_PY" "$T/idle.py" "$SOCK" "$DPID" "$T/idle-data" >"$T/idle.out" 2>&1
is "the idle-connection client ran to its end" "$?" 0
while IFS= read -r line; do
    case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        SKIP\ *) ok "# SKIP ${line#SKIP }" ;;
        *) echo "# $line" ;;
    esac
done <"$T/idle.out"
like "the daemon logs the idle closes" "$(cat "$T/sweepd.out")" \
    'closed [0-9]+ idle connections? \(no complete request within idle_timeout, 1 s\)'
check "sweepd with idle_timeout still running" kill -0 "$DPID"
check "it exits 0 on shutdown" rel_stop_daemon
done_testing
