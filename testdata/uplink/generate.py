#!/usr/bin/env python3
"""Regenerates the uplink tarballs of testdata/uplink and cases.json.

The good ones are written by other tools than ours (GNU tar, bsdtar, Python's
tarfile in each header format) so the Go reader is checked against what people
and scripts really produce. The bad ones each break exactly one rule. The
outputs are committed: CI reads them and never needs these tools.

    python3 testdata/uplink/generate.py   # needs GNU tar and bsdtar on PATH
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEV = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
DEV2 = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
T = "2026-11-20T10:00:00Z"
LONG_FILE = "apps-states-" + "x" * 80  # pushes the entry name past ustar's 100 bytes

EVENTS = [
    {"event": "device-created", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S20", "details": {"device": DEV, "name": "gw-01", "time": T}},
    {"event": "check-in", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S21", "details": {"device": DEV, "time": T, "target": "intel-corei7-64-lmp-42", "ostree-hash": "ab" * 32, "docker-apps": ["shellhttpd"], "tag": "main"}},
    {"event": "put-file", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S22", "details": {"device": DEV, "name": "hardware-info", "attachment": DEV + "_hardware-info", "time": T}},
    {"event": "put-file", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S23", "details": {"device": DEV, "name": LONG_FILE, "attachment": DEV + "_" + LONG_FILE, "time": T}},
    {"event": "update-events", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S24", "details": {"device": DEV, "events": [
        {"id": "c0ffee00-0000-4000-8000-000000000001", "deviceTime": T, "eventType": {"id": "EcuDownloadStarted", "version": 0},
         "event": {"correlationId": "main-42-abc", "ecu": "ecu-serial-1", "targetName": "intel-corei7-64-lmp-42", "version": "42"}},
        {"id": "c0ffee00-0000-4000-8000-000000000002", "deviceTime": T, "eventType": {"id": "EcuInstallationCompleted", "version": 0},
         "event": {"correlationId": "main-42-abc", "ecu": "ecu-serial-1", "success": True, "targetName": "intel-corei7-64-lmp-42", "version": "42", "details": "ok"}}]}},
    {"event": "labels", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S25", "details": {"device": DEV, "labels": {"site": "line-3"}, "time": T}},
    {"event": "device-deleted", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S26", "details": {"device": DEV2, "time": T}},
    {"event": "updates-applied", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S27", "details": {"version": "cd" * 32, "status": "applied", "time": T}},
    # Two lines that are rejected on their own without sinking the batch.
    {"event": "reboot", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S28", "details": {"device": DEV}},
]
BROKEN_LINE = '{"event": "check-in", "id": "not-a-ulid", "details": {"device": "' + DEV + '", "time": "' + T + '"}}'
GOOD = {"events": 8, "rejected": 2, "attachments": 2}


def events_log(events=EVENTS, extra=(BROKEN_LINE,)):
    lines = [json.dumps(e, separators=(",", ":")) for e in events] + list(extra)
    return ("\n".join(lines) + "\n").encode()


def manifest(log, **over):
    m = {"format": 1, "factory": "acme", "satellite": "sat-berlin-1", "batch": "01JD8X3V5Q2Z7N4M6K8P0R1S2Z",
         "seq": 7, "created": T, "event-count": sum(1 for l in log.split(b"\n") if l.strip()),
         "events-sha256": hashlib.sha256(log).hexdigest()}
    m.update(over)
    return json.dumps(m, indent=2).encode()


def files(log=None, **over):
    log = events_log() if log is None else log
    return [
        ("manifest.json", manifest(log, **over)),
        ("tags.json", b'{"production": ["main"], "ci": ["devel", "main"]}'),
        ("events.log", log),
        (DEV + "_hardware-info", b'{"cpu": "x86_64", "memory": 4096}'),
        (DEV + "_" + LONG_FILE, b"[]"),
    ]


def pytar(path, entries, fmt=tarfile.PAX_FORMAT, raw=None):
    """entries: (name, bytes) regular files or (TarInfo, bytes|None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in entries:
            if isinstance(name, tarfile.TarInfo):
                ti = name
            else:
                ti = tarfile.TarInfo(name)
                ti.mtime = 1763632800
            if data is not None and ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    data = raw(buf.getvalue()) if raw else buf.getvalue()
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0))


def special(name, kind, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def main():
    good = os.path.join(HERE, "good")
    bad = os.path.join(HERE, "bad")
    for d in (good, bad):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    cases = {}

    src = tempfile.mkdtemp()
    for name, data in files():
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
    names = [n for n, _ in files()]
    tools = {
        "gnu-tar-dot.tar.gz": ["tar", "-C", src, "-czf", None, "."],
        "gnu-tar-posix.tar.gz": ["tar", "--format=posix", "-C", src, "-czf", None] + names,
        "gnu-tar-reversed.tar.gz": ["tar", "-C", src, "-czf", None] + names[::-1],
        "bsdtar-dot.tar.gz": ["bsdtar", "-C", src, "-czf", None, "."],
        "bsdtar-ustar.tar.gz": ["bsdtar", "--format=ustar", "-C", src, "-czf", None] + names,
    }
    for out, cmd in tools.items():
        # Long names do not fit ustar; that tool gets the short-named batch.
        if "ustar" in out:
            log = events_log(EVENTS[:3] + EVENTS[4:])
            short = tempfile.mkdtemp()
            for name, data in files(log)[:4]:
                with open(os.path.join(short, name), "wb") as f:
                    f.write(data)
            cmd = ["bsdtar", "--format=ustar", "-C", short, "-czf", None] + [n for n, _ in files(log)[:4]]
            cases["good/" + out] = {"events": 7, "rejected": 2, "attachments": 1}
        else:
            cases["good/" + out] = GOOD
        cmd[cmd.index(None)] = os.path.join(good, out)
        subprocess.run(cmd, check=True)
    for fmt, label in ((tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "gnu")):
        out = f"python-{label}.tar.gz"
        pytar(os.path.join(good, out), [("./" + n, d) for n, d in files()], fmt)
        cases["good/" + out] = GOOD
    cases["good/blank-lines.tar.gz"] = {"events": 8, "rejected": 2, "attachments": 2}
    pytar(os.path.join(good, "blank-lines.tar.gz"), files(events_log(extra=(BROKEN_LINE, "", "   "))))

    def bad_case(out, code, entries, **kw):
        pytar(os.path.join(bad, out), entries, **kw)
        cases["bad/" + out] = {"code": code}

    base = files()
    bad_case("path-traversal.tar.gz", "unsafe-name", base + [("../../etc/cron.d/evil", b"x")])
    bad_case("absolute-path.tar.gz", "unsafe-name", base + [("/etc/passwd", b"x")])
    bad_case("nested-path.tar.gz", "unsafe-name", base + [("sub/file", b"x")])
    bad_case("hidden-name.tar.gz", "unsafe-name", base + [("._manifest.json", b"x")])
    bad_case("odd-characters.tar.gz", "unsafe-name", base + [(DEV + "_hardware info;rm", b"x")])
    bad_case("symlink.tar.gz", "not-regular-file", base + [(special(DEV + "_aktoml", tarfile.SYMTYPE, linkname="/etc/shadow"), None)])
    bad_case("hardlink.tar.gz", "not-regular-file", base + [(special(DEV + "_aktoml", tarfile.LNKTYPE, linkname="events.log"), None)])
    bad_case("char-device.tar.gz", "not-regular-file", base + [(special("null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)])
    bad_case("fifo.tar.gz", "not-regular-file", base + [(special("pipe", tarfile.FIFOTYPE), None)])
    bad_case("directory.tar.gz", "not-regular-file", base + [(special("sub", tarfile.DIRTYPE), None)])
    bad_case("duplicate.tar.gz", "duplicate-entry", base + [("./events.log", events_log())])
    bad_case("unexpected-file.tar.gz", "unexpected-entry", base + [("notes.txt", b"hello")])
    bad_case("missing-manifest.tar.gz", "missing-entry", base[1:])
    bad_case("missing-events.tar.gz", "missing-entry", [e for e in base if e[0] != "events.log"])
    bad_case("checksum-mismatch.tar.gz", "checksum-mismatch", files(**{"events-sha256": "00" * 32}))
    bad_case("count-mismatch.tar.gz", "count-mismatch", files(**{"event-count": 3}))
    bad_case("future-format.tar.gz", "unsupported-format", files(format=2))
    bad_case("bad-manifest.tar.gz", "bad-manifest", files(satellite="../other"))
    bad_case("manifest-not-json.tar.gz", "bad-manifest", [("manifest.json", b"{nope")] + base[1:])
    bad_case("bad-tags.tar.gz", "bad-tags", [base[0], ("tags.json", b'{"production": ["../x"]}')] + base[2:])
    long_log = events_log(extra=(BROKEN_LINE, '{"event":"labels","pad":"' + "a" * (1 << 20) + '"}'))
    bad_case("long-line.tar.gz", "line-too-long", files(long_log))
    bad_case("attachment-too-large.tar.gz", "attachment-too-large", base + [(DEV + "_aktoml", b"\0" * ((10 << 20) + 1))])

    # A header that declares a 2 GiB events.log: refused before a byte is inflated.
    ti = tarfile.TarInfo("events.log")
    ti.size = 2 << 30
    with open(os.path.join(bad, "huge-entry-header.tar.gz"), "wb") as f:
        f.write(gzip.compress(ti.tobuf(tarfile.GNU_FORMAT) + b"\0" * 4096, mtime=0))
    cases["bad/huge-entry-header.tar.gz"] = {"code": "entry-too-large"}

    # Truncated, not gzip, corrupt CRC.
    whole = open(os.path.join(good, "python-pax.tar.gz"), "rb").read()
    with open(os.path.join(bad, "truncated.tar.gz"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    cases["bad/truncated.tar.gz"] = {"code": "truncated"}
    with open(os.path.join(bad, "not-gzip.tar.gz"), "wb") as f:
        f.write(gzip.decompress(whole))
    cases["bad/not-gzip.tar.gz"] = {"code": "bad-gzip"}
    corrupt = bytearray(whole)
    corrupt[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    with open(os.path.join(bad, "bad-crc.tar.gz"), "wb") as f:
        f.write(bytes(corrupt))
    cases["bad/bad-crc.tar.gz"] = {"code": "bad-gzip"}

    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
