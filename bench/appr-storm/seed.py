#!/usr/bin/env python3
"""Seeds an App Registry (CNR) server for the OperatorHub storm and walks its hot path.

Two subcommands, Python 3 standard library only:

  seed  Pushes PACKAGES packages spread over NAMESPACES namespaces, RELEASES releases each
        (1.0.0, 1.1.0, ...), every release a distinct small Helm-chart tar.gz, through
        `POST /cnr/api/v1/packages/NS/PKG`. With --berth it first creates the namespaces as
        organizations (`POST /api/v1/organizations`) and afterwards makes every package public
        (`PUT /api/v1/repositories/NS/PKG/visibility`); credentials go in
        `Authorization: basic base64(user:pass)` on every request.
  walk  Does what an OperatorHub catalog build does, once, anonymously: lists every namespace,
        shows each package's `default` release (media type helm) and fetches a sample of
        blobs by digest (checking sha256(gunzip(blob)) == digest). Writes the request paths
        of the storm, one `step<TAB>path` line per request, as list/show/blob triples.

Exit status is non-zero when anything unexpected came back.
"""

import argparse
import base64
import concurrent.futures as cf
import gzip
import hashlib
import http.client
import io
import json
import random
import sys
import tarfile
import threading
import time
import urllib.parse

API = "/cnr/api/v1/packages"


def ns_name(i):
    return "storm-ns-%02d" % i


def pkg_name(i):
    return "operator-%05d" % i


def layout(packages, namespaces):
    """(namespace, package) pairs: package i lives in namespace i % namespaces."""
    return [(ns_name(i % namespaces), pkg_name(i)) for i in range(packages)]


def releases(n):
    return ["1.%d.0" % r for r in range(n)]


def chart(ns, pkg, release):
    """A distinct, deterministic Helm chart archive of a few KiB: (tar.gz bytes, tar sha256)."""
    rng = random.Random("%s/%s@%s" % (ns, pkg, release))
    noise = base64.b64encode(rng.getrandbits(8 * 1800).to_bytes(1800, "little")).decode()
    lines = "\n".join("    k%02d: %s" % (i, noise[i * 60:(i + 1) * 60]) for i in range(len(noise) // 60))
    files = {
        "Chart.yaml": "apiVersion: v1\nname: %s\nversion: %s\ndescription: storm fixture for %s\n" % (pkg, release, ns),
        "values.yaml": "replicaCount: 1\nimage:\n  repository: example/%s\n  tag: v%s\n" % (pkg, release),
        "templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n%s\n" % (pkg, lines),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (pkg, name))
            info.size, info.mtime, info.mode = len(data), 1500000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), hashlib.sha256(tar_bytes).hexdigest()


class Client:
    """One keep-alive HTTP connection per thread, reopened on failure."""

    def __init__(self, url, auth=None, timeout=60):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            sys.exit("only http:// targets are supported: %s" % url)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.local = threading.local()

    def request(self, method, path, body=None, expect_json=True):
        headers = {"User-Agent": "berth-appr-storm"}
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.auth:
            headers["Authorization"] = self.auth
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                self.local.conn = None
            if expect_json:
                try:
                    return resp.status, json.loads(data) if data else None
                except ValueError:
                    return resp.status, data[:200]
            return resp.status, data
        raise RuntimeError("unreachable")


def basic(user, password):
    return "basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def run_parallel(fn, items, workers, label):
    done, failed, start = 0, [], time.time()
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        for item, err in zip(items, pool.map(fn, items)):
            done += 1
            if err:
                failed.append((item, err))
                if len(failed) <= 5:
                    print("  %s %s: %s" % (label, item, err), file=sys.stderr)
            if done % 2000 == 0:
                print("  %s: %d/%d (%.0f/s)" % (label, done, len(items), done / (time.time() - start)), file=sys.stderr)
    took = time.time() - start
    print("%s: %d requests in %.1fs (%.0f/s), %d failed" % (label, len(items), took, len(items) / max(took, 1e-9), len(failed)),
          file=sys.stderr)
    return failed


def cmd_seed(args):
    client = Client(args.url, basic(args.user, args.password) if args.user else None)
    pairs = layout(args.packages, args.namespaces)
    rels = releases(args.releases)
    failed = []

    if args.berth:
        def org(ns):
            status, body = client.request("POST", "/api/v1/organizations", {"name": ns})
            if status in (200, 201) or status == 409:
                return None
            return "%s %s" % (status, body)
        failed += run_parallel(org, sorted({ns for ns, _ in pairs}), 2, "create organizations")

    def push(item):
        ns, pkg, rel = item
        blob, _ = chart(ns, pkg, rel)
        body = {"blob": base64.b64encode(blob).decode(), "release": rel, "media_type": "helm"}
        for attempt in range(20):
            status, resp = client.request("POST", "%s/%s/%s" % (API, ns, pkg), body)
            if status == 200:
                return None
            code = resp.get("code") or (resp.get("error") or {}).get("code") if isinstance(resp, dict) else None
            if status == 409 and code == "package-exists":
                return None  # seeded before; same deterministic content
            if status == 409 and code == "resource-in-use":  # the reference server's index lock
                time.sleep(0.05 * (attempt + 1))
                continue
            return "%s %s" % (status, resp)
        return "gave up: index lock stayed busy"

    # All first releases before any second one, so a package is listable as soon as possible.
    items = [(ns, pkg, rel) for rel in rels for ns, pkg in pairs]
    failed += run_parallel(push, items, args.workers, "push releases")

    if args.berth:
        def public(item):
            ns, pkg = item
            status, resp = client.request("PUT", "/api/v1/repositories/%s/%s/visibility" % (ns, pkg), {"visibility": "public"})
            return None if status in (200, 204) else "%s %s" % (status, resp)
        failed += run_parallel(public, pairs, args.workers, "make public")
    return 1 if failed else 0


def cmd_walk(args):
    # Anonymous, like OperatorHub's marketplace operator against public packages.
    client = Client(args.url)
    pairs = layout(args.packages, args.namespaces)
    want_default = releases(args.releases)[-1]
    by_ns = {}
    for ns, pkg in pairs:
        by_ns.setdefault(ns, set()).add(pkg)
    problems = []
    listing = {}
    for ns in sorted(by_ns):
        path = "%s?namespace=%s" % (API, ns)
        status, body = client.request("GET", path)
        if status != 200 or not isinstance(body, list):
            problems.append("list %s: %s %s" % (ns, status, str(body)[:200]))
            continue
        listing[ns] = (path, {p["name"].split("/", 1)[1]: p["default"] for p in body})
        missing = by_ns[ns] - set(listing[ns][1])
        if missing:
            problems.append("list %s: %d seeded packages missing (e.g. %s)" % (ns, len(missing), sorted(missing)[0]))

    def show(item):
        ns, pkg = item
        default = listing.get(ns, (None, {}))[1].get(pkg)
        if default is None:
            return item, None, "not listed"
        path = "%s/%s/%s/%s/helm" % (API, ns, pkg, urllib.parse.quote(default, safe=""))
        status, body = client.request("GET", path)
        if status != 200 or not isinstance(body, dict):
            return item, None, "show: %s %s" % (status, str(body)[:200])
        digest = body["content"]["digest"]
        if default != want_default:
            return item, None, "default is %s, expected %s" % (default, want_default)
        if args.verify and digest != chart(ns, pkg, default)[1]:
            return item, None, "digest %s differs from the pushed chart's" % digest
        return item, (path, "%s/%s/%s/blobs/sha256/%s" % (API, ns, pkg, digest)), None

    triples = []
    start = time.time()
    with cf.ThreadPoolExecutor(max_workers=args.workers) as pool:
        for (ns, pkg), paths, err in pool.map(show, pairs):
            if err:
                problems.append("%s/%s: %s" % (ns, pkg, err))
            else:
                triples.append((listing[ns][0], paths[0], paths[1]))
    print("walk: %d lists + %d shows in %.1fs" % (len(listing), len(pairs), time.time() - start), file=sys.stderr)

    # Fetch a sample of blobs raw and check the digest over the decompressed tar (spec §5).
    rng = random.Random(42)
    sample = triples if len(triples) <= args.check_blobs else rng.sample(triples, args.check_blobs)
    sizes = []

    def blob(t):
        status, data = client.request("GET", t[2], expect_json=False)
        if status != 200:
            return "blob %s: %s" % (t[2], status)
        try:
            got = hashlib.sha256(gzip.decompress(data)).hexdigest()
        except OSError as e:
            return "blob %s: not gzip (%s)" % (t[2], e)
        sizes.append(len(data))
        return None if t[2].endswith(got) else "blob %s: sha256(gunzip) = %s" % (t[2], got)

    with cf.ThreadPoolExecutor(max_workers=args.workers) as pool:
        problems += [e for e in pool.map(blob, sample) if e]
    if sizes:
        print("walk: %d blobs checked, %d-%d bytes (mean %.0f)" % (len(sizes), min(sizes), max(sizes), sum(sizes) / len(sizes)),
              file=sys.stderr)

    for p in problems[:10]:
        print("  problem: " + p, file=sys.stderr)
    if problems:
        print("walk: %d problems" % len(problems), file=sys.stderr)
    # Interleave namespaces so consecutive triples hit different namespaces and packages.
    rng.shuffle(triples)
    with open(args.out, "w") as f:
        for lst, shw, blb in triples:
            f.write("list\t%s\nshow\t%s\nblob\t%s\n" % (lst, shw, blb))
    print("walk: wrote %d request paths to %s" % (3 * len(triples), args.out), file=sys.stderr)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("seed", "walk"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:5000")
        p.add_argument("--packages", type=int, default=1000)
        p.add_argument("--namespaces", type=int, default=10)
        p.add_argument("--releases", type=int, default=2)
        p.add_argument("--workers", type=int, default=8, help="concurrent requests")
    s = sub.choices["seed"]
    s.add_argument("--user", help="basic-auth user (Berth)")
    s.add_argument("--password", default="")
    s.add_argument("--berth", action="store_true", help="also create organizations and make packages public")
    w = sub.choices["walk"]
    w.add_argument("--out", required=True, help="file for the storm's request paths")
    w.add_argument("--check-blobs", type=int, default=200, help="how many blobs to download and verify")
    w.add_argument("--no-verify", dest="verify", action="store_false", help="skip digest == pushed chart check")
    args = ap.parse_args()
    if args.packages < 1 or args.namespaces < 1 or args.releases < 1:
        ap.error("counts must be positive")
    sys.exit(cmd_seed(args) if args.cmd == "seed" else cmd_walk(args))


if __name__ == "__main__":
    main()
