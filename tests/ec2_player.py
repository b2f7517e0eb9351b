"""Plays EC2 instances on this machine. moto records instances but runs nothing, so the
player reads each new instance's user data back from moto and runs it here, as cloud-init
would at boot, with two changes to its environment: ``SKIFF_NODE_HOST=127.0.0.1`` (the
instances' private address: never the one moto hands out, which is not ours) and a
``SKIFF_SHUTDOWN_COMMAND`` that leaves a marker instead of powering this machine off.

It also plays EC2's side: an instance terminated through the API has its processes killed
at once (as a vanished machine would), and an instance whose user data powered it off is
terminated, as ``InstanceInitiatedShutdownBehavior=terminate`` asks.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from backends.ec2_fleet import ANY_JOB, find_instances

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Played:
    role: str
    proc: subprocess.Popen
    folder: Path
    killed: bool = False
    powered_off: bool = False


@dataclass
class InstancePlayer:
    client: Any
    folder: Path
    every: float = 0.2
    host: str = "127.0.0.1"  # the instances' private address, as SKIFF_NODE_HOST
    played: dict[str, Played] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ignore = {i.id for i in self._skiff_instances()}  # earlier tests' instances
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.errors: list[BaseException] = []

    def _skiff_instances(self) -> list[Any]:
        return find_instances(self.client, ANY_JOB)

    def __enter__(self) -> InstancePlayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for played in self.played.values():
            if not played.killed:  # a group already killed and reaped may have a new owner
                _kill(played)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception as exc:  # keep playing; the test reads the errors
                self.errors.append(exc)

    def tick(self) -> None:
        for instance in self._skiff_instances():
            if instance.id in self._ignore:
                continue
            played = self.played.get(instance.id)
            if played is None and instance.state == "running":
                self.played[instance.id] = self._boot(instance.id, instance.role)
            elif played and instance.state not in ("pending", "running") and not played.killed:
                _kill(played)  # terminated through the API: the machine is gone
            elif played and played.proc.poll() is not None and not played.powered_off:
                self._power_off(instance.id, played)

    def _boot(self, instance_id: str, role: str) -> Played:
        reply = self.client.describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData"
        )
        script = base64.b64decode(reply["UserData"]["Value"]).decode()
        folder = self.folder / instance_id
        folder.mkdir(parents=True)
        (folder / "user-data.sh").write_text(script)
        env = os.environ | {
            "PYTHONPATH": str(ROOT),  # the AMI has the project's code
            "SKIFF_NODE_HOST": self.host,
            "SKIFF_SHUTDOWN_COMMAND": f"touch {folder / 'powered-off'}",
        }
        with open(folder / "console.log", "wb") as log:
            proc = subprocess.Popen(
                ["bash", str(folder / "user-data.sh")],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Played(role, proc, folder)

    def _power_off(self, instance_id: str, played: Played) -> None:
        played.powered_off = (played.folder / "powered-off").exists()
        if not played.powered_off:
            return
        behaviour = self.client.describe_instance_attribute(
            InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
        )["InstanceInitiatedShutdownBehavior"]["Value"]
        if behaviour == "terminate":
            self.client.terminate_instances(InstanceIds=[instance_id])
        else:
            self.client.stop_instances(InstanceIds=[instance_id])

    def console(self, role: str) -> str:
        return "\n".join(
            (p.folder / "console.log").read_text(errors="replace")
            for p in self.played.values()
            if p.role == role
        )

    def running_processes(self) -> list[str]:
        return [i for i, p in self.played.items() if p.proc.poll() is None]

    def left_behind(self) -> list[int]:
        """Processes still running on instances that are gone (killed by the player)."""
        gone = {p.proc.pid for p in self.played.values() if p.killed}
        return [pid for pid, sid in _sessions() if sid in gone]


def _sessions() -> list[tuple[int, int]]:
    """(pid, session id) of every process of this machine."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):  # one that ended meanwhile
            found.append((proc.pid, os.getsid(proc.pid)))
    return found


def _kill(played: Played) -> None:
    """Every process of the instance: its session (its user data's ``timeout`` puts the role
    in a process group of its own, which a kill of the script's group would leave running
    until its own timeouts, minutes later)."""
    played.killed = True
    for pid, sid in _sessions():
        if sid == played.proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    played.proc.wait()
