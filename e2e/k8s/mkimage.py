#!/usr/bin/env python3
"""Write a one-layer docker-archive (`docker save` format) without a docker
engine, for `ctr images import`. Mirrors the Dockerfile's scratch images:
same paths, symlinks, user, PATH and entrypoint, so the e2e suite tests the
layout users get from `docker build` when no docker daemon is running.

  mkimage.py OUT.tar REF --user 65532:65532 --entrypoint '["/entrypoint","--"]' \
      --cmd '["/app"]' --file /path/to/bin:/entrypoint --link /bin/kill:/entrypoint \
      --dir /tmp:1777
"""
import argparse
import hashlib
import io
import json
import tarfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("ref")
    ap.add_argument("--user", default="")
    ap.add_argument("--entrypoint", default="null")
    ap.add_argument("--cmd", default="null")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--file", action="append", default=[], help="SRC:DST (mode 0755)")
    ap.add_argument("--link", action="append", default=[], help="DST:TARGET symlink")
    ap.add_argument("--dir", action="append", default=[], help="DST:OCTALMODE")
    a = ap.parse_args()

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        made = set()

        def parents(path):
            parts = path.strip("/").split("/")[:-1]
            for i in range(len(parts)):
                d = "/".join(parts[: i + 1])
                if d not in made:
                    made.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
                    t.addfile(ti)

        for spec in a.dir:
            dst, mode = spec.rsplit(":", 1)
            parents(dst)
            d = dst.strip("/")
            made.add(d)
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, int(mode, 8), 0
            t.addfile(ti)
        for spec in a.file:
            src, dst = spec.split(":", 1)
            parents(dst)
            with open(src, "rb") as f:
                data = f.read()
            ti = tarfile.TarInfo(dst.strip("/"))
            ti.size, ti.mode, ti.mtime = len(data), 0o755, 0
            t.addfile(ti, io.BytesIO(data))
        for spec in a.link:
            dst, target = spec.split(":", 1)
            parents(dst)
            ti = tarfile.TarInfo(dst.strip("/"))
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, target, 0o777, 0
            t.addfile(ti)
    layer = buf.getvalue()
    diff = hashlib.sha256(layer).hexdigest()
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": json.loads(a.entrypoint),
            "Cmd": json.loads(a.cmd),
            "User": a.user,
            "Env": a.env or ["PATH=/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]},
        "history": [{"created_by": "e2e/k8s/mkimage.py"}],
    }
    cj = json.dumps(cfg).encode()
    cid = hashlib.sha256(cj).hexdigest()
    man = json.dumps([{"Config": cid + ".json", "RepoTags": [a.ref], "Layers": [diff + "/layer.tar"]}]).encode()
    with tarfile.open(a.out, "w") as t:
        for n, b in ((cid + ".json", cj), (diff + "/layer.tar", layer), ("manifest.json", man)):
            ti = tarfile.TarInfo(n)
            ti.size, ti.mode = len(b), 0o644
            t.addfile(ti, io.BytesIO(b))


if __name__ == "__main__":
    main()
