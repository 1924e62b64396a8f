"""Socket client helpers for the reliability tests (hostile_*.sh, fault_*.sh,
access_*.sh, tests/soak/soak.sh). Standard library only.

Used two ways:
  * imported by the Python programs those scripts write (sys.path gets this
    directory), for the Conn class and rpc();
  * as a command: `python3 reliability_client.py SOCKET 'JSON LINE'` prints
    the reply line and exits 0 when a reply came (1 on error or timeout).
"""
import json
import os
import socket
import sys
import time


class Conn:
    """One client connection to the daemon's Unix socket."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def send_obj(self, obj):
        self.send(json.dumps(obj, allow_nan=True) + "\n")

    def line(self, timeout=10.0):
        """The next reply line as bytes (without "\\n"); None on EOF or timeout."""
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln

    def reply(self, timeout=10.0):
        """The next reply parsed as JSON; None on EOF/timeout; {"_raw":..} if not JSON."""
        ln = self.line(timeout)
        if ln is None:
            return None
        try:
            return json.loads(ln)
        except ValueError:
            return {"_raw": ln.decode("utf-8", "replace")}

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def rpc(path, req, timeout=10.0):
    """Sends REQ (an object, or a str/bytes line without its newline) on a new
    connection and returns the parsed reply (None when none came)."""
    c = Conn(path, timeout)
    try:
        if isinstance(req, (str, bytes)):
            c.send((req.encode() if isinstance(req, str) else req) + b"\n")
        else:
            c.send_obj(req)
        return c.reply(timeout)
    finally:
        c.close()


def ping_ok(path, timeout=10.0):
    try:
        r = rpc(path, {"op": "ping"}, timeout)
    except OSError:
        return False
    return isinstance(r, dict) and r.get("ok") is True


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return -1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write("usage: reliability_client.py SOCKET 'JSON LINE'\n")
        sys.exit(2)
    try:
        r = rpc(sys.argv[1], sys.argv[2])
    except OSError as e:
        sys.stderr.write("reliability_client: %s\n" % e)
        sys.exit(1)
    if r is None:
        sys.exit(1)
    print(json.dumps(r))
    sys.exit(0)
