"""A real MQTT broker for the tests: Debian's ``mosquitto`` on 127.0.0.1, a free port and a
config file in a temporary folder; killed and restarted on the same port at will.

``mosquitto_path()`` -> the executable or None (tests marked ``mosquitto`` skip without it, and
fail under CI as root, see conftest.py). ``Mosquitto(folder)`` -> ``.start()``, ``.kill(sig)``,
``.port``; persistence on (saved every second and on exit), so a subscriber's persistent
session and the messages queued for it survive a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, folder: Path, users: dict | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        lines = [f"listener {self.port} 127.0.0.1", f"persistence true",
                 f"persistence_location {self.folder}/", "autosave_interval 1",
                 f"log_dest file {self.folder / 'mosquitto.log'}", "log_type all"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")   # else it drops to user mosquitto, who cannot write here
        if users:
            pw = self.folder / "passwords"
            for i, (u, p) in enumerate(users.items()):
                subprocess.run([shutil.which("mosquitto_passwd", path=os.environ.get("PATH", "") + ":/usr/bin"),
                                "-b", *(["-c"] if i == 0 else []), str(pw), u, p], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> "Mosquitto":
        self.proc = subprocess.Popen([mosquitto_path(), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: "
                                   f"{self.proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within the timeout")

    def saved_after(self, t: float) -> bool:
        db = self.folder / "mosquitto.db"
        return db.exists() and db.stat().st_mtime > t

    def kill(self, sig=signal.SIGKILL) -> None:
        """Send ``sig``; for SIGSTOP the broker stays (hung), for others it is waited for."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGSTOP:
                return
            self.proc.wait(timeout=15)
        self.proc = None

    def log(self) -> str:
        p = self.folder / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""
