#!/usr/bin/env python3
"""A Hugging Face Hub stand-in on 127.0.0.1 for tests: serves the repos under ROOT/ORG/NAME/
through the Hub's own endpoints, as Python's huggingface_hub and embtui (hf-hub) call them.

    server.py ROOT [--port 0] [--gated ORG/NAME] [--token T] [--stall SUFFIX] [--log FILE]

Endpoints (shared/docs/HUB.md):
  GET  /api/models/ORG/NAME/revision/REV[?blobs=true]  {sha, siblings:[{rfilename, size, blobId, lfs}]}
  GET  /api/models/ORG/NAME/tree/REV[/PATH]?recursive=… [{type, path, size, oid, lfs}]
  HEAD|GET /ORG/NAME/resolve/REV/PATH  ETag (sha256 for LFS files, git blob id otherwise),
       X-Repo-Commit, Content-Length, Range → 206 + Content-Range.
Errors as the Hub sends them: 404 + X-Error-Code RepoNotFound / RevisionNotFound /
EntryNotFound; a --gated repo answers 401 (no token) or 403 (wrong token) + GatedRepo on its
files. The commit is the sha1 of the repo's file list and hashes, so it changes with content.
--stall SUFFIX: a download (Range open-ended) of a file whose path ends with SUFFIX sends the
first half, prints `stalled PATH BYTES` on stdout and sends nothing more until the client goes
away (at most 120 s). Prints `listening PORT` when ready. Every request is logged as a JSON
line to --log.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

LFS_EXT = (".onnx", ".onnx_data", ".data", ".safetensors", ".bin", ".pt")


def is_lfs(path):
    return path.endswith(LFS_EXT) or ".onnx_data" in path


class Repo:
    def __init__(self, root, repo_id):
        self.dir = os.path.join(root, repo_id)
        self.files = {}
        for base, _, names in os.walk(self.dir):
            for n in names:
                full = os.path.join(base, n)
                rel = os.path.relpath(full, self.dir).replace(os.sep, "/")
                data = open(full, "rb").read()
                self.files[rel] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "blob": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                    "lfs": is_lfs(rel),
                }
        listing = json.dumps(sorted((p, f["sha256"]) for p, f in self.files.items()))
        self.commit = hashlib.sha1(listing.encode()).hexdigest()

    def etag(self, path):
        f = self.files[path]
        return f["sha256"] if f["lfs"] else f["blob"]

    def sibling(self, path, blobs):
        f = self.files[path]
        s = {"rfilename": path}
        if blobs:
            s.update(size=f["size"], blobId=f["blob"])
            if f["lfs"]:
                s["lfs"] = {"sha256": f["sha256"], "size": f["size"], "pointerSize": 134}
        return s


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-answer (the stall tests do that on purpose)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    opts = None

    def log_message(self, fmt, *args):  # quiet; requests go to --log
        pass

    def record(self, status, extra=None):
        if self.opts.log:
            entry = {"method": self.command, "path": self.path, "status": status,
                     "range": self.headers.get("Range"), "auth": bool(self.headers.get("Authorization"))}
            entry.update(extra or {})
            with open(self.opts.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send(self, status, body=b"", headers=None, ctype="application/json"):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status)

    def error(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        self.send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

    def repo(self, repo_id):
        if repo_id.count("/") != 1 or ".." in repo_id:
            return None
        if not os.path.isdir(os.path.join(self.opts.root, repo_id)):
            return None
        return Repo(self.opts.root, repo_id)

    def resolve_rev(self, repo, rev):
        return repo.commit if rev in ("main", repo.commit) else None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                return self.api(parts[2] + "/" + parts[3], parts[4], parts[5], "/".join(parts[6:]), query)
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
        except (BrokenPipeError, ConnectionResetError):
            return
        self.error(404, "RepoNotFound", "not an endpoint of this server")

    def api(self, repo_id, kind, rev, sub, query):
        repo = self.repo(repo_id)
        if repo is None:
            return self.error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
        commit = self.resolve_rev(repo, rev)
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if kind == "revision":
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            info = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                    "gated": "manual" if repo_id in self.opts.gated else False,
                    "siblings": [repo.sibling(p, blobs) for p in sorted(repo.files)]}
            return self.send(200, json.dumps(info).encode())
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        out, dirs = [], set()
        for p in sorted(repo.files):
            if sub and not p.startswith(sub.rstrip("/") + "/"):
                continue
            rest = p[len(sub.rstrip("/") + "/"):] if sub else p
            if "/" in rest and not recursive:
                dirs.add((sub.rstrip("/") + "/" if sub else "") + rest.split("/")[0])
                continue
            for i in range(rest.count("/")):
                dirs.add((sub.rstrip("/") + "/" if sub else "") + "/".join(rest.split("/")[: i + 1]))
            f = repo.files[p]
            e = {"type": "file", "path": p, "size": f["size"], "oid": f["blob"]}
            if f["lfs"]:
                e["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}
            out.append(e)
        out = [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(dirs)] + out
        return self.send(200, json.dumps(out).encode())

    def resolve(self, repo_id, rev, path):
        repo = self.repo(repo_id)
        if repo is None:
            return self.error(404, "RepoNotFound", "Repository Not Found")
        commit = self.resolve_rev(repo, rev)
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if path not in repo.files:
            return self.error(404, "EntryNotFound", f"{path} does not exist on {rev}")
        if repo_id in self.opts.gated:
            auth = self.headers.get("Authorization", "")
            if not auth:
                return self.error(401, "GatedRepo", "Access to this model is restricted; you must be authenticated")
            if auth != f"Bearer {self.opts.token}":
                return self.error(403, "GatedRepo", "Access to this model is restricted and you are not in the authorized list")
        data = open(os.path.join(repo.dir, path), "rb").read()
        etag = repo.etag(path)
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if repo.files[path]["lfs"]:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        start, end, status = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            start = int(a) if a else 0
            end = min(int(b), len(data) - 1) if b else len(data) - 1
            if start >= len(data) and len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return self.record(416)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = data[start:end + 1]
        stall = (self.command == "GET" and self.opts.stall and path.endswith(self.opts.stall)
                 and (not rng or rng.endswith("-")))
        if not stall:
            return self.send(status, body, headers, "application/octet-stream")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        self.record(status, {"stalled_at": start + half})
        print(f"stalled {repo_id}/{path} {start + half}", flush=True)
        # Nothing more, until the client goes away (or 120 s: the server never outlives a test).
        deadline = time.time() + 120
        self.connection.settimeout(0.5)
        while time.time() < deadline:
            try:
                if self.connection.recv(1) == b"":
                    break
            except OSError as e:
                if "timed out" not in str(e):
                    break
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--gated", action="append", default=[])
    ap.add_argument("--token", default="hf_test_token")
    ap.add_argument("--stall")
    ap.add_argument("--log")
    opts = ap.parse_args()
    Handler.opts = opts
    server = Server(("127.0.0.1", opts.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    # Ends when the test closes our stdin (or after an hour, whatever happens to the test).
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.time() + 3600
    while time.time() < deadline and sys.stdin.read(1) != "":
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
