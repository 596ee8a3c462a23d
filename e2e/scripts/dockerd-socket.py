#!/usr/bin/env python3
"""Runs dockerd behind a listening socket this process holds, as systemd's docker.socket does.

  dockerd-socket.py SOCKET LOG DOCKERD-ARGS...

dockerd gets the socket as fd 3 (-H fd://, LISTEN_PID/LISTEN_FDS), so a restart keeps the same
socket file: a container that bind-mounts it (cnmd's) still reaches the engine afterwards, where
a dockerd that made its own socket would leave it a deleted one. SIGHUP restarts dockerd; SIGTERM
stops it and removes the socket.
"""
import grp
import os
import signal
import socket
import subprocess
import sys

path, log, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX)
sock.bind(path)
try:
    os.chown(path, 0, grp.getgrnam("docker").gr_gid)
except KeyError:
    pass
os.chmod(path, 0o660)
sock.listen(128)
os.dup2(sock.fileno(), 3)
out = open(log, "ab")


def run():
    # exec keeps the shell's pid, so LISTEN_PID names dockerd.
    script = 'LISTEN_PID=$$ LISTEN_FDS=1 exec dockerd -H fd:// "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh", *args], pass_fds=(3,), stdout=out, stderr=out)


def stop(child):
    child.terminate()
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


wanted = []
signal.signal(signal.SIGHUP, lambda *_: wanted.append("restart"))
signal.signal(signal.SIGTERM, lambda *_: wanted.append("stop"))
child = run()
while True:
    if not wanted:
        signal.pause()
        continue
    what = wanted.pop(0)
    stop(child)
    if what == "stop":
        break
    child = run()
os.unlink(path)
