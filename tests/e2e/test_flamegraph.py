# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/flamegraph.py: the SVG drawn from format=folded output.

The folded file of a real run (examples/demo.c under QEMU) is read here on
its own terms (a line is a path and a count) and every path's frame totals
are summed independently; the SVG, parsed as XML, must hold one chain of
rectangles per path, each frame inside its parent's x-range one level
further from the root, its width proportional to those sums. Chromium then
opens the SVG: its DOM after the embedded script ran (zoomed and searched
through the URL) and its screenshot (decoded here) show the names, the
colours and the matched share. Synthetic inputs check pruning, escaping,
bad lines and a million-path, 5000-deep input."""
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

from harness import ROOT, WORK, Failure, run, run_calltraces, test

FLAME = os.path.join(ROOT, "scripts", "flamegraph.py")
SVG_NS = "{http://www.w3.org/2000/svg}"
# qsort is entered through its PLT stub, whose jump is no call: the frame is qsort@plt.
DEMO_FUNCS = ("main", "eval", "expr", "term", "factor", "number", "qsort@plt", "by_value", "report")
HIGHLIGHT = (230, 0, 230)


# ---- the reference: the folded file read independently -------------------------

def read_folded(path):
    """{path tuple: count} of a folded file (duplicate lines add up)."""
    counts = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                raise Failure("malformed folded line %r" % line)
            counts[tuple(stack.split(";"))] += int(n)
    return counts


def prefix_sums(counts):
    """{prefix tuple: the counts of all paths that start with it}."""
    sums = collections.Counter()
    for path, n in counts.items():
        for i in range(1, len(path) + 1):
            sums[path[:i]] += n
    return sums


# ---- the SVG as drawn ---------------------------------------------------------------

Rect = collections.namedtuple("Rect", "name depth x w y fill text")


def svg_frames(path):
    """The frames of a flame-graph SVG: name (first line of the title), depth
    (from the rectangle's row: rows from the root, which is the bottom row,
    or the top one in an icicle graph), geometry, fill and label."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise Failure("%s is not well-formed XML: %s" % (path, e))
    if root.tag != SVG_NS + "svg":
        raise Failure("root element %s" % root.tag)
    group = root.find(".//%sg[@id='frames']" % SVG_NS)
    if group is None:
        raise Failure("no frames group in %s" % path)
    raw = []
    for g in group.findall(SVG_NS + "g"):
        title, rect, text = g.find(SVG_NS + "title"), g.find(SVG_NS + "rect"), g.find(SVG_NS + "text")
        if title is None or rect is None or text is None:
            raise Failure("frame without title, rect or text: %s" % ET.tostring(g)[:200])
        raw.append((title.text.split("\n")[0], float(rect.get("x")), float(rect.get("width")),
                    float(rect.get("y")), rect.get("fill"), text.text or ""))
    if not raw:
        raise Failure("no frames in %s" % path)
    rows = sorted({r[3] for r in raw})
    steps = {b - a for a, b in zip(rows, rows[1:])}
    if len(steps) > 1:
        raise Failure("rows are not evenly spaced: %s" % sorted(steps))
    # The root spans the picture: on the bottom row of a flame graph, the
    # top row of an icicle graph.
    widest = max(raw, key=lambda r: r[2])
    if widest[3] not in (rows[0], rows[-1]):
        raise Failure("the widest frame %s is on neither the top nor the bottom row" % widest[0])
    icicle = widest[3] == rows[0] and len(rows) > 1
    depth = {y: (i if icicle else len(rows) - 1 - i) for i, y in enumerate(rows)}
    return root, icicle, [Rect(n, depth[y], x, w, y, fill, t) for n, x, w, y, fill, t in raw]


def check_chains(svg, counts, icicle, minwidth=0.0):
    """Every path of the folded file is a chain of rectangles from the root,
    one row further per frame, each within its parent's x-range, with
    widths proportional to the summed counts; no other rectangle is drawn
    than the prefixes at least minwidth pixels wide; siblings do not
    overlap. Returns the frames, and {id(frame): its path prefix}."""
    _, got_icicle, frames = svg_frames(svg)
    if got_icicle != icicle:
        raise Failure("%s: drawn %s, expected %s" % (svg, "icicle" if got_icicle else "flame",
                                                     "icicle" if icicle else "flame"))
    roots = [f for f in frames if f.depth == 0]
    if len(roots) != 1:
        raise Failure("%d frames on the root row" % len(roots))
    root = roots[0]
    sums = prefix_sums(counts)
    total = sum(counts.values())
    scale = root.w / total
    eps = 0.01                                   # the SVG has 3 decimals
    index = collections.defaultdict(list)
    for f in frames:
        index[(f.depth, f.name)].append(f)
    drawn = set()
    prefix = {id(root): ()}
    for path in counts:
        parent = root
        for i in range(1, len(path) + 1):
            want_w = sums[path[:i]] * scale
            if want_w < minwidth - 1e-9:
                break                            # pruned, and so is the rest of the path
            cands = [f for f in index[(i, path[i - 1])]
                     if f.x >= parent.x - eps and f.x + f.w <= parent.x + parent.w + eps
                     and parent.x < f.x + f.w / 2 < parent.x + parent.w]
            if len(cands) != 1:
                raise Failure("%s: %d rectangles for frame %d of %s within its parent [%.3f, %.3f]"
                              % (svg, len(cands), i, ";".join(path), parent.x, parent.x + parent.w))
            f = cands[0]
            if abs(f.w - want_w) > eps:
                raise Failure("%s: %s is %.3f px wide, its %d calls make %.3f px"
                              % (svg, ";".join(path[:i]), f.w, sums[path[:i]], want_w))
            drawn.add(path[:i])
            prefix[id(f)] = path[:i]
            parent = f
    if len(frames) != len(drawn) + 1:
        extra = len(frames) - len(drawn) - 1
        raise Failure("%s: %d rectangles beyond the folded paths' frames" % (svg, extra))
    for d in {f.depth for f in frames}:
        row = sorted((f for f in frames if f.depth == d), key=lambda f: f.x)
        for a, b in zip(row, row[1:]):
            if b.x < a.x + a.w - eps:
                raise Failure("%s: %s and %s overlap on row %d" % (svg, a.name, b.name, d))
    return frames, prefix


def flame(*args, check=True):
    return run([sys.executable, FLAME] + [str(a) for a in args], check=check, timeout=600)


# ---- a real run -----------------------------------------------------------------------

_demo = {}


def demo_folded():
    """examples/demo.c run under QEMU with calltrace format=folded."""
    if not _demo:
        binary = os.path.join(WORK, "flame-demo")
        run(["gcc", "-O0", "-g", "-no-pie", "-fno-pie", "-o", binary,
             os.path.join(ROOT, "examples", "demo.c")])
        folded = os.path.join(WORK, "flame-demo.folded")
        run_calltraces(binary, ["format=folded,out=" + folded])
        counts = read_folded(folded)
        if not counts:
            raise Failure("empty folded output")
        _demo["folded"], _demo["counts"] = folded, counts
    return _demo["folded"], _demo["counts"]


@test
def flamegraph_svg_chains_match_folded_counts():
    folded, counts = demo_folded()
    for icicle in (False, True):
        svg = os.path.join(WORK, "flame-demo%s.svg" % ("-icicle" if icicle else ""))
        flame(folded, "-o", svg, "--minwidth", "0", *(["--icicle"] if icicle else []))
        frames, _ = check_chains(svg, counts, icicle)
        names = {f.name for f in frames}
        missing = [n for n in DEMO_FUNCS if n not in names]
        if missing:
            raise Failure("%s lacks frames of %s" % (svg, missing))
    # the default --minwidth: narrow frames pruned, their counts still in
    # their parents' widths (checked by the proportional widths)
    svg = os.path.join(WORK, "flame-demo-pruned.svg")
    flame(folded, "-o", svg, "--minwidth", "3")
    check_chains(svg, counts, False, minwidth=3.0)
    # standard output and standard input give the same picture
    with open(folded, "rb") as f:
        p = subprocess.run([sys.executable, FLAME, "-", "--minwidth", "3"], stdin=f,
                           stdout=subprocess.PIPE, timeout=300)
    if p.returncode != 0 or p.stdout != open(svg, "rb").read():
        raise Failure("stdin to stdout differs from the file to file drawing")


# ---- the browser ------------------------------------------------------------------------

def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise Failure("no chromium (scripts/setup.sh installs it)")


def browser(url, *mode, size=(1200, 700)):
    """Chromium, headless, offline, on a fresh profile."""
    prof = tempfile.mkdtemp(prefix="flame-chromium-", dir=WORK)
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", "--force-color-profile=srgb",
           "--user-data-dir=" + prof, "--window-size=%d,%d" % size,
           "--virtual-time-budget=5000"] + list(mode) + [url]
    try:
        return run(cmd, timeout=180)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def dom_text(dom, ident):
    """The text of the element with that id in a DOM dump, or None."""
    m = re.search(r'<text id="%s"[^>]*>([^<]*)</text>' % ident, dom)
    return m and unescape(m.group(1))


def dom_frames(dom):
    """(name, fill, visible, label, x, width) of each frame group in a DOM
    dump, in document order."""
    out = []
    for m in re.finditer(r'<g class="f[^"]*"([^>]*)><title>([^<\n]*)\n[^<]*</title>'
                         r'<rect([^>]*)>(?:</rect>)?(?:<text[^>]*/>|<text[^>]*>([^<]*)</text>)', dom):
        attrs = dict(re.findall(r'([a-z]+)="([^"]*)"', m.group(3)))
        out.append((unescape(m.group(2)), attrs["fill"], "display: none" not in m.group(1),
                    unescape(m.group(4) or ""), float(attrs["x"]), float(attrs["width"])))
    return out


def unescape(s):
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG,
    decoded here with zlib."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure("%s is not a PNG" % path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height = int.from_bytes(hdr[0:4], "big"), int.from_bytes(hdr[4:8], "big")
    depth, ctype, interlace = hdr[8], hdr[9], hdr[12]
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise Failure("PNG of depth %d, colour type %d, interlace %d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        elif ft != 0:
            raise Failure("PNG filter type %d" % ft)
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def rgb(fill):
    m = re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", fill or "")
    if not m:
        raise Failure("unexpected fill %r" % fill)
    return tuple(int(v) for v in m.groups())


@test
def flamegraph_in_chromium_names_colours_zoom_search():
    folded, counts = demo_folded()
    svg = os.path.join(WORK, "flame-browser.svg")
    flame(folded, "-o", svg, "--title", "calltrace demo")
    frames, prefix = check_chains(svg, counts, False, minwidth=0.1)
    sums = prefix_sums(counts)
    url = "file://" + urllib.parse.quote(svg)

    # As opened: the title, and the frames wide enough show their names
    # (the rest shorten them with ".." or show nothing).
    dom = browser(url, "--dump-dom").stdout
    if dom_text(dom, "title") != "calltrace demo":
        raise Failure("title text %r" % dom_text(dom, "title"))
    shown = dom_frames(dom)
    check_labels(shown, frames)
    labelled = {n for n, _, _, label, _, _ in shown if label == n}
    if not {"main", "eval", "expr", "term", "report"} <= labelled:
        raise Failure("opened, the DOM labels only %s" % sorted(labelled))

    # Zoomed on main through the URL (what a click on it does): main and
    # its callers span the width, the frames under it are stretched in
    # proportion to their counts, all others are hidden.
    main = min((p for p in prefix.values() if p and p[-1] == "main"), key=len)
    dom = browser(url + "?zoom=" + urllib.parse.quote(";".join(main)), "--dump-dom").stdout
    shown = dom_frames(dom)
    check_labels(shown, frames)
    full = shown[0][5]
    for (name, _, vis, _, x, w), f in zip(shown, frames):
        p = prefix[id(f)]
        if p[:len(main)] == main:
            want = sums[p] / sums[main] * full
        elif p == main[:len(p)]:
            want = full
        else:
            want = None
        if vis != (want is not None) or want is not None and abs(w - want) > 0.01:
            raise Failure("zoomed on main, %s is %s %.3f px wide, expected %s"
                          % (";".join(p), "shown" if vis else "hidden", w, want))
    labelled = {n for n, _, vis, label, _, _ in shown if vis and label == n}
    if not {"main", "eval", "expr", "term", "factor", "report", "qsort@plt"} <= labelled:
        raise Failure("zoomed on main, the DOM labels only %s" % sorted(labelled))
    missing = [n for n in DEMO_FUNCS if n not in {s[0] for s in shown if s[2]}]
    if missing:
        raise Failure("zoomed on main, no frame of %s shown" % missing)

    # Search through the URL: the matches are highlighted and the share
    # equals the calls on paths through a match, summed from the folded file.
    pattern = "^(term|number)$"
    dom = browser(url + "?s=" + urllib.parse.quote(pattern), "--dump-dom").stdout
    rx = re.compile(pattern)
    want = sum(n for p, n in counts.items() if any(rx.search(f) for f in p))
    m = re.search(r'<text id="matched"[^>]*>Matched: ([0-9.]+)% \((\d+) calls\)</text>', dom)
    if not m or int(m.group(2)) != want:
        raise Failure("matched text %r, expected %d calls" % (m and m.group(0), want))
    total = sum(counts.values())
    if abs(float(m.group(1)) - 100.0 * want / total) > 0.006:
        raise Failure("matched share %s%%, expected %.2f%%" % (m.group(1), 100.0 * want / total))
    for n, fill, _, _, _, _ in dom_frames(dom):
        if (rgb(fill) == HIGHLIGHT) != bool(rx.search(n) and n != "all"):
            raise Failure("frame %s has fill %s after searching %s" % (n, fill, pattern))

    # The picture: not blank, and the widest frames' colours are on it.
    png = os.path.join(WORK, "flame-browser.png")
    browser(url, "--screenshot=" + png, size=(1200, 500))
    width, height, rows = png_pixels(png)
    if (width, height) != (1200, 500):
        raise Failure("screenshot is %dx%d" % (width, height))
    colours = collections.Counter(px for row in rows for px in row)
    if len(colours) < 20:
        raise Failure("screenshot has %d colours: blank?" % len(colours))
    wide = sorted(frames, key=lambda f: -f.w)[:8]
    absent = [(f.name, f.fill) for f in wide if colours[rgb(f.fill)] < 50]
    if absent:
        raise Failure("colours of frames %s not in the screenshot" % absent)
    print("  chromium: %d colours in the screenshot; zoomed on main, %d frames labelled"
          % (len(colours), len(labelled)))


def check_labels(shown, frames):
    """The DOM has the SVG's frames, in order; each shown label is the name,
    the name cut short with "..", or empty, and a frame 9 px per character
    wide (more than any monospace font of the SVG's size needs) shows the
    whole name."""
    if [s[0] for s in shown] != [f.name for f in frames]:
        raise Failure("the DOM's frames (%d) are not the SVG's (%d)" % (len(shown), len(frames)))
    for name, _, vis, label, _, w in shown:
        if not vis:
            continue
        if label and label != name and not (label.endswith("..") and name.startswith(label[:-2])):
            raise Failure("frame %r labelled %r" % (name, label))
        if w >= 9 * len(name) + 6 and label != name:
            raise Failure("frame %r, %.1f px wide, labelled %r" % (name, w, label))


# ---- synthetic inputs ---------------------------------------------------------------------

@test
def flamegraph_escapes_names_and_refuses_bad_lines():
    src = os.path.join(WORK, "flame-names.folded")
    names = ["std::vector<int>::push_back(int&&)", "operator<<(a, b)", 'say "hi" & \'bye\'',
             "ctl\x01char", "]]>", "</text>", "name with spaces"]
    with open(src, "wb") as f:
        for i, n in enumerate(names):
            f.write(("root;%s;leaf%d %d\n" % (n, i, i + 1)).encode())
        f.write(b"root;bad\xffutf8 7\n\n")
    out = os.path.join(WORK, "flame-names.svg")
    flame(src, "-o", out, "--minwidth", "0")
    _, _, frames = svg_frames(out)
    got = {f.name for f in frames}
    want = {n.replace("\x01", "\ufffd") for n in names} | {"root", "bad\ufffdutf8", "all"}
    want |= {"leaf%d" % i for i in range(len(names))}
    if got != want:
        raise Failure("names drawn %r, expected %r" % (sorted(got - want), sorted(want - got)))
    bad = [("a;b 3\nc;d x\n", 2, "not a non-negative integer"),
           ("a;b 3\n\nno_count_here\n", 3, "no count"),
           ("a;b 3\n 4\n", 2, "empty stack"),
           ("a;b 1.5\n", 1, "not a non-negative integer")]
    for text, lineno, words in bad:
        src = os.path.join(WORK, "flame-bad.folded")
        with open(src, "w") as f:
            f.write(text)
        out = os.path.join(WORK, "flame-bad.svg")
        if os.path.exists(out):
            os.unlink(out)
        p = flame(src, "-o", out, check=False)
        where = "%s:%d:" % (src, lineno)
        if p.returncode != 2 or where not in p.stderr or words not in p.stderr or os.path.exists(out):
            raise Failure("%r: exit %d, stderr %r, output written: %s"
                          % (text, p.returncode, p.stderr, os.path.exists(out)))
    p = flame(os.path.join(WORK, "no-such.folded"), check=False)
    if p.returncode != 2 or "no-such.folded" not in p.stderr:
        raise Failure("missing input: exit %d, %r" % (p.returncode, p.stderr))


@test
def flamegraph_pruning_keeps_parent_widths():
    # Many narrow siblings under wide parents, in a fixed pseudo-random mix.
    counts = collections.Counter()
    x = 12345
    for i in range(20000):
        x = (x * 1103515245 + 12345) % 2 ** 31
        depth = 2 + x % 6
        path = ["main"] + ["f%d" % ((x >> (3 * k)) % (3 + 5 * k)) for k in range(depth)]
        counts[tuple(path)] += 1 + (x >> 7) % 50
    src = os.path.join(WORK, "flame-prune.folded")
    with open(src, "w") as f:
        for p, n in counts.items():
            f.write("%s %d\n" % (";".join(p), n))
    # Wide enough for a single call to stay clear of the SVG's rounding.
    for minwidth, icicle in ((0.0, False), (5.0, True), (40.0, False)):
        out = os.path.join(WORK, "flame-prune.svg")
        flame(src, "-o", out, "--width", 60000, "--minwidth", minwidth,
              *(["--icicle"] if icicle else []))
        frames, _ = check_chains(out, counts, icicle, minwidth=minwidth)
        if minwidth and any(f.w < minwidth - 0.001 for f in frames):
            raise Failure("a frame narrower than --minwidth %s was drawn" % minwidth)


@test
def flamegraph_million_paths_and_5000_deep_stack():
    # 1,000,000 distinct paths of 13 frames, and a recursion 5000 frames deep
    # on 50 paths (one per depth where it calls out).
    src = os.path.join(WORK, "flame-big.folded")
    pre = "_start;__libc_start_main;main;run;loop;step;dispatch;handle;work"
    with open(src, "w") as f:
        for a in range(100):
            f.write("".join("%s;a%d;b%d;c%d;d%d %d\n" % (pre, a, b, c, (a + b + c) % 7, 1 + (b * c) % 97)
                            for b in range(100) for c in range(100)))
        chain = pre + ";rec" * 5000
        f.write("%s 3000000\n" % chain)
        for k in range(50):
            f.write("%s;leaf%d 1000\n" % (pre + ";rec" * (100 * k + 1), k))
    size = os.path.getsize(src)
    out = os.path.join(WORK, "flame-big.svg")
    t0 = time.time()
    flame(src, "-o", out)
    took = time.time() - t0
    print("  flamegraph.py: 1,000,050 paths (%.0f MB) in %.1f s, SVG %.1f MB"
          % (size / 1e6, took, os.path.getsize(out) / 1e6))
    if took > 300:
        raise Failure("took %.0f s" % took)
    _, _, frames = svg_frames(out)
    depth = max(f.depth for f in frames)
    if depth != 9 + 5000:
        raise Failure("deepest row %d, expected %d" % (depth, 9 + 5000))
    recs = [f for f in frames if f.name == "rec"]
    if len(recs) != 5000 or len({f.depth for f in recs}) != 5000:
        raise Failure("%d rec frames on %d rows" % (len(recs), len({f.depth for f in recs})))
    root = [f for f in frames if f.depth == 0][0]
    total = sum(1 + (b * c) % 97 for b in range(100) for c in range(100)) * 100 + 3000000 + 50000
    rec1 = [f for f in recs if f.depth == 10][0]
    if abs(rec1.w - root.w * (3000000 + 50000) / total) > 0.01:
        raise Failure("outermost rec is %.3f px wide, expected %.3f"
                      % (rec1.w, root.w * 3050000 / total))
    os.unlink(src)
    os.unlink(out)


@test
def demo_draws_flame_graph():
    env = dict(os.environ, CALLSTACK_SKIP_APT="1")
    p = run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env, timeout=600)
    folded, svg = (os.path.join(ROOT, "out", "demo" + ext) for ext in (".folded", ".svg"))
    if "flame graph" not in p.stdout or svg not in p.stdout:
        raise Failure("the demo does not say where the picture is:\n%s" % p.stdout[-1000:])
    frames, _ = check_chains(svg, read_folded(folded), False, minwidth=0.1)
    if not {"main", "eval", "expr"} <= {f.name for f in frames}:
        raise Failure("demo.svg lacks main, eval or expr")
