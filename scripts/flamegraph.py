#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Draws an interactive SVG flame graph (or its icicle form) from collapsed
stacks: calltrace's format=folded output, or any file of lines

    frame;frame;...;frame COUNT

COUNT being a non-negative integer (calltrace: the exact number of calls
that entered the last frame with exactly those callers). Lines sharing a
prefix are merged into one tree; a frame's width is the sum of the counts of
the lines through it. The SVG is self-contained: its embedded script zooms
on click, searches (regular expression, else substring), shows each frame's
name, count and share, and needs no network.

Usage: flamegraph.py [options] FOLDED [-o OUT.svg]   (FOLDED "-": stdin)

Input: blank lines are skipped; any other line without a final " COUNT"
(digits only) or with an empty stack is an error: one message naming the
line, exit status 2, nothing written. Bytes that are not UTF-8 and control
characters in names are drawn as U+FFFD.

Frames narrower than --minwidth pixels are not drawn, nor is anything
above them; their counts still make up their parents' widths (the parent
shows a gap where they would be). The search and zoom see only drawn
frames: zooming into a frame does not bring back pruned ones, so use
--minwidth 0 to keep every frame (larger files).

The page's URL may carry ?s=REGEX (search on load) and ?zoom=a;b;c (zoom on
load to the frame at that path, "all" excluded); zooming and searching
update it, so the address bar is a link to the current view."""
import argparse
import bisect
import gc
import itertools
import operator
import os
import re
import sys
import zlib

ROOT_NAME = b"all"

# Characters that XML 1.0 cannot hold, or that must be escaped, in text and
# in double-quoted attribute values.
_XML_TABLE = {c: "\ufffd" for c in range(0x20) if c != 0x09}
_XML_TABLE.update({0x7f: "\ufffd", 0xfffe: "\ufffd", 0xffff: "\ufffd",
                   ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;"})


def xml(s):
    return s.translate(_XML_TABLE)


class InputError(Exception):
    pass


# A line: the stack (ends with a non-space), spaces, the count, trailing
# blanks. The stacks' ";" are already "\0" here (see parse()).
LINE = re.compile(rb"^(.*[^ ]) +([0-9]+)[ \t\r]*$", re.M)
BLANK = re.compile(rb"[ \t\r]*")
SEP = b"\0"


def parse(text, where, reverse=False):
    """The lines of collapsed stacks `text` (bytes: names are decoded only
    when drawn), sorted, as a list of stacks (frames separated by "\0") and
    the running sums of their counts (cum[i]: the counts of the first i).
    Raises InputError naming the first malformed line.

    Sorted stacks put every frame's lines in one block (the "\0" separator
    sorts below any byte of a name), so that a frame's total is a
    difference of two running sums and its block is found by bisection:
    the work is in the regular expression, the sort and the frames drawn,
    not in Python loops over every frame of the input."""
    if SEP in text:
        text = text.replace(SEP, "\ufffd".encode())
    text = text.replace(b";", SEP)
    found = LINE.findall(text)
    lines = text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
    if len(found) != lines:
        # Blank lines, or a malformed one: look line by line (slower, rare).
        for lineno, line in enumerate(text.split(b"\n"), 1):
            if not BLANK.fullmatch(line) and not LINE.fullmatch(line):
                line = line.replace(SEP, b";").decode("utf-8", "replace")
                stack, sep, count = line.rstrip().rpartition(" ")
                if not sep:
                    why = "no count (expected 'frame;frame;... COUNT')"
                elif not stack.strip():
                    why = "empty stack before the count"
                else:
                    why = "the count is not a non-negative integer"
                raise InputError("%s:%d: %s: %.80r" % (where, lineno, why, line))
    del text
    if reverse:
        found = [(SEP.join(reversed(st.split(SEP))), n) for st, n in found]
    found.sort()
    stacks = list(map(operator.itemgetter(0), found))
    cum = list(itertools.accumulate(map(int, map(operator.itemgetter(1), found)), initial=0))
    return stacks, cum


def layout(stacks, cum, minc):
    """The frames to draw, depth first, children in name order, as
    (name, depth, start, total, own): start in count units from the left,
    total the counts of the lines through the frame, own those of the lines
    ending at it. A frame whose total is below minc (or zero) is left out
    with everything above it, without being looked into."""
    out = []
    total = cum[-1]
    if not total:
        return out
    # (name, depth, start, key, lo, hi): the frame's lines are stacks[lo:hi],
    # its key the common stack prefix "a\0b\0...\0name" ("" for the root).
    todo = [(ROOT_NAME, 0, 0, b"", 0, len(stacks))]
    bl = bisect.bisect_left
    while todo:
        name, depth, start, key, lo, hi = todo.pop()
        if stacks[lo] == stacks[hi - 1] and key != stacks[lo]:
            # One stack left (deep recursion, often): its frames above this
            # one all have the same total; no more searching.
            tot = cum[hi] - cum[lo]
            out.append((name, depth, start, tot, 0))
            rest = stacks[lo][len(key) + 1 if key else 0:].split(SEP)
            for i, f in enumerate(rest, 1):
                out.append((f, depth + i, start, tot, tot if i == len(rest) else 0))
            continue
        # The lines that end at this frame sort first in its block.
        j = bl(stacks, key + SEP, lo, hi) if key else lo
        out.append((name, depth, start, cum[hi] - cum[lo], cum[j] - cum[lo]))
        skip = len(key) + 1 if key else 0
        pos = start
        placed = []
        while j < hi:
            if minc > 0:
                # Children ending before line k-1, the first at which the
                # counts from j reach minc, are all too narrow: skip them
                # in one step, to the child that holds line k-1.
                k = bl(cum, cum[j] + minc, j + 1, hi + 1)
                if k > hi:
                    break
                if k - 1 > j:
                    s = stacks[k - 1]
                    i = s.find(SEP, skip)
                    k = bl(stacks, s if i < 0 else s[:i], j, k - 1)
                    pos += cum[k] - cum[j]
                    j = k
            s = stacks[j]
            i = s.find(SEP, skip)
            child = s if i < 0 else s[:i]
            end = bl(stacks, child + b"\x01", j, hi)
            t = cum[end] - cum[j]
            if t >= minc and t > 0:
                placed.append((child[skip:], depth + 1, pos, child, j, end))
            pos += t
            j = end
        placed.reverse()                           # popped in name order
        todo.extend(placed)
    return out


def colour(name, cache={}):
    """A warm colour that depends on the name only, so a function has the
    same colour wherever it appears."""
    c = cache.get(name)
    if c is None:
        h = zlib.crc32(name.encode("utf-8", "replace"))
        c = cache[name] = "rgb(%d,%d,%d)" % (205 + h % 50, 70 + (h >> 8) % 150, 20 + (h >> 16) % 50)
    return c


def fit(name, width, char_width):
    """The label drawn in a frame `width` pixels wide: the name, cut with
    ".." when it does not fit, or nothing below three characters."""
    n = int((width - 6) / char_width)
    if n >= len(name):
        return name
    if n < 3:
        return ""
    return name[:n - 2] + ".."


SCRIPT = r"""
"use strict";
var svg, frames = [], byg = new Map(), W, PAD, FH, CW, TOTAL, INV, COUNTNAME;
var details, matched, unzoom, hdr, zoomed = null, term = "";
function num(a) { return parseFloat(svg.getAttribute(a)); }
function init() {
  svg = document.documentElement;
  W = num("data-width"); PAD = num("data-xpad"); FH = num("data-frameheight");
  CW = num("data-charwidth"); TOTAL = num("data-total");
  INV = svg.getAttribute("data-icicle") === "1"; COUNTNAME = svg.getAttribute("data-countname");
  var base = num("data-y0");
  details = document.getElementById("details"); matched = document.getElementById("matched");
  unzoom = document.getElementById("unzoom"); hdr = document.getElementById("header");
  var gs = document.getElementById("frames").children;
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], r = g.firstElementChild.nextElementSibling, t = r.nextElementSibling;
    var y = parseFloat(r.getAttribute("y"));
    var f = { g: g, r: r, t: t, name: g.firstElementChild.textContent.split("\n")[0],
              s: parseFloat(g.getAttribute("data-s")), c: parseFloat(g.getAttribute("data-c")),
              d: Math.round(INV ? (y - base) / FH : (base - y) / FH),
              x: parseFloat(r.getAttribute("x")), w: parseFloat(r.getAttribute("width")),
              fill: r.getAttribute("fill") };
    frames.push(f); byg.set(g, f);
  }
  var fr = document.getElementById("frames");
  fr.addEventListener("click", function (e) { var f = hit(e); if (f) { zoom(f); remember(); } });
  fr.addEventListener("mouseover", function (e) { var f = hit(e); if (f) show(f); });
  fr.addEventListener("mouseout", function () { details.textContent = " "; });
  unzoom.addEventListener("click", function () { reset(); remember(); });
  document.getElementById("search").addEventListener("click", ask);
  matched.addEventListener("click", function () { search(""); remember(); });
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "f") { e.preventDefault(); ask(); }
    else if (e.key === "Escape") { reset(); search(""); remember(); }
  });
  window.addEventListener("scroll", stick);
  var q = new URLSearchParams(window.location.search);
  if (q.get("zoom")) { var f = find(q.get("zoom").split(";")); if (f) zoom(f); }
  if (q.get("s")) search(q.get("s"));
  stick();
}
function hit(e) { var g = e.target.closest ? e.target.closest("g.f") : null; return g ? byg.get(g) : null; }
function pct(c) { return (100 * c / TOTAL).toFixed(2) + "%"; }
function show(f) {
  var s = f.name + ": " + f.c + " " + COUNTNAME + " (" + pct(f.c) + ")";
  var room = Math.floor((W - 2 * PAD - 360) / CW);
  details.textContent = s.length > room ? s.slice(0, room - 2) + ".." : s;
}
function stick() { hdr.setAttribute("transform", "translate(0," + window.scrollY + ")"); }
function label(f, w) {
  var n = Math.floor((w - 6) / CW);
  f.t.textContent = n >= f.name.length ? f.name : n < 3 ? "" : f.name.slice(0, n - 2) + "..";
}
function place(f, x, w) {
  f.r.setAttribute("x", x.toFixed(3)); f.r.setAttribute("width", w.toFixed(3));
  f.t.setAttribute("x", (x + 3).toFixed(3)); label(f, w);
}
function find(path) {
  /* the frame at path (names below the root), depth by depth */
  var cur = frames[0];
  for (var d = 0; d < path.length; d++) {
    var next = null;
    for (var i = 0; i < frames.length && !next; i++) {
      var o = frames[i];
      if (o.d === d + 1 && o.name === path[d] && o.s >= cur.s && o.s + o.c <= cur.s + cur.c) next = o;
    }
    if (!next) return null;
    cur = next;
  }
  return cur;
}
function pathOf(f) {
  var p = [];
  for (var i = 0; i < frames.length; i++) {
    var o = frames[i];
    if (o.d > 0 && o.d <= f.d && o.s <= f.s && o.s + o.c >= f.s + f.c) p[o.d - 1] = o.name;
  }
  return p.join(";");
}
function zoom(f) {
  if (f.d === 0) { reset(); return; }
  zoomed = f;
  var k = (W - 2 * PAD) / f.c;
  for (var i = 0; i < frames.length; i++) {
    var o = frames[i], inside = o.s >= f.s && o.s + o.c <= f.s + f.c;
    if (o.d >= f.d && inside) {
      o.g.style.display = ""; o.g.classList.remove("anc");
      place(o, PAD + (o.s - f.s) * k, o.c * k);
    } else if (o.d < f.d && o.s <= f.s && o.s + o.c >= f.s + f.c) {
      o.g.style.display = ""; o.g.classList.add("anc");
      place(o, PAD, W - 2 * PAD);
    } else {
      o.g.style.display = "none";
    }
  }
  unzoom.style.display = "";
}
function reset() {
  zoomed = null;
  for (var i = 0; i < frames.length; i++) {
    var o = frames[i];
    o.g.style.display = ""; o.g.classList.remove("anc");
    place(o, o.x, o.w);
  }
  unzoom.style.display = "none";
}
function ask() {
  var t = window.prompt("Search (regular expression, else substring):", term);
  if (t !== null) { search(t); remember(); }
}
function search(t) {
  term = t;
  var re = null;
  if (t) { try { re = new RegExp(t); } catch (e) { re = null; } }
  var spans = [];
  for (var i = 0; i < frames.length; i++) {
    var o = frames[i];
    var hitp = t !== "" && o.d > 0 && (re ? re.test(o.name) : o.name.indexOf(t) >= 0);
    o.r.setAttribute("fill", hitp ? "rgb(230,0,230)" : o.fill);
    if (hitp) spans.push([o.s, o.s + o.c]);
  }
  /* the share of calls at or under any match: nested matches count once */
  spans.sort(function (a, b) { return a[0] - b[0]; });
  var sum = 0, end = -1;
  for (var j = 0; j < spans.length; j++) {
    var a = spans[j][0], b = spans[j][1];
    if (a >= end) { sum += b - a; end = b; } else if (b > end) { sum += b - end; end = b; }
  }
  matched.textContent = t === "" ? " " : "Matched: " + pct(sum) + " (" + sum + " " + COUNTNAME + ")";
  matched.setAttribute("data-matched", t === "" ? "" : String(sum));
}
function remember() {
  var q = new URLSearchParams();
  if (zoomed) q.set("zoom", pathOf(zoomed));
  if (term) q.set("s", term);
  try { history.replaceState(null, "", q.toString() ? "?" + q.toString() : window.location.pathname); }
  catch (e) { /* some browsers refuse it for local files */ }
}
"""

CSS = """
text { font-family: monospace; fill: #000; }
.f text { pointer-events: none; }
.f:hover rect { stroke: #000; stroke-width: 0.5; }
.anc { opacity: 0.5; }
.btn { cursor: pointer; fill: #1a4f9c; }
#title { font-size: %(tsize)dpx; text-anchor: middle; }
"""


def render(frames, total, opts, out):
    """Writes the SVG of the frames that layout() chose."""
    maxdepth = max((f[1] for f in frames), default=0)
    fh, fs = opts.frameheight, opts.fontsize
    cw = fs * 0.61                             # monospace advance, a little generous
    head = 2 * fs + 40
    height = head + (maxdepth + 1) * fh + fh // 2 + 4
    y0 = head + 2 if opts.icicle else head + maxdepth * fh + 2
    scale = (opts.width - 2 * opts.xpad) / total if total else 0
    w = out.write
    w('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n')
    w('<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" '
      'viewBox="0 0 %d %d" font-size="%d" onload="init()" data-width="%d" data-xpad="%d" '
      'data-frameheight="%d" data-charwidth="%.3f" data-total="%d" data-minwidth="%s" '
      'data-icicle="%d" data-y0="%d" data-countname="%s">\n'
      % (opts.width, height, opts.width, height, fs, opts.width, opts.xpad, fh, cw, total,
         opts.minwidth, 1 if opts.icicle else 0, y0, xml(opts.countname)))
    w("<title>%s</title>\n" % xml(opts.title))
    w("<style>%s</style>\n" % (CSS % {"tsize": fs + 5}))
    w("<script><![CDATA[%s]]></script>\n" % SCRIPT)
    w('<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>\n' % (opts.width, height))
    w('<g id="frames">\n')
    for name, depth, start, t, own in frames:
        name = name.decode("utf-8", "replace")
        x = opts.xpad + start * scale
        width = t * scale
        y = y0 + depth * fh if opts.icicle else y0 - depth * fh
        w('<g class="f" data-s="%d" data-c="%d"><title>%s\n%d %s (%.2f%%): self %d, below %d'
          '</title><rect x="%.3f" y="%d" width="%.3f" height="%d" rx="1.5" fill="%s"/>'
          '<text x="%.3f" y="%.1f">%s</text></g>\n'
          % (start, t, xml(name), t, xml(opts.countname), 100.0 * t / total, own, t - own,
             x, y, width, fh - 1, colour(name), x + 3, y + fh / 2 + fs * 0.36,
             xml(fit(name, width, cw))))
    w("</g>\n")
    # The header last, so that it is drawn over the frames when it follows
    # the scrolled view.
    w('<g id="header"><rect x="0" y="0" width="%d" height="%d" fill="#f8f8f0"/>\n'
      % (opts.width, head - 4))
    w('<text id="title" x="%d" y="%d">%s</text>\n' % (opts.width // 2, fs + 10, xml(opts.title)))
    ctl = 2 * fs + 26
    w('<text id="unzoom" class="btn" x="%d" y="%d" style="display:none">Reset zoom</text>\n'
      % (opts.xpad, ctl))
    w('<text id="details" x="%d" y="%d">%s</text>\n'
      % (opts.xpad + 100, ctl, "No stacks in the input" if not total else " "))
    w('<text id="matched" class="btn" x="%d" y="%d" text-anchor="end"> </text>\n'
      % (opts.width - opts.xpad - 70, ctl))
    w('<text id="search" class="btn" x="%d" y="%d" text-anchor="end">Search</text>\n'
      % (opts.width - opts.xpad, ctl))
    w("</g>\n</svg>\n")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="flamegraph.py",
        description="Draw an interactive SVG flame graph from collapsed stacks "
                    "('frame;frame;... COUNT' lines, as calltrace's format=folded writes).")
    ap.add_argument("folded", metavar="FOLDED", help="the collapsed stacks ('-': standard input)")
    ap.add_argument("-o", "--output", metavar="OUT.svg", help="where to write (default: standard output)")
    ap.add_argument("--title", help='title (default "Flame graph", "Icicle graph" with --icicle)')
    ap.add_argument("--icicle", "--inverted", dest="icicle", action="store_true",
                    help="icicle form: the root at the top, callees below their callers")
    ap.add_argument("--reverse", action="store_true",
                    help="merge the paths from their last frame: the callers of each function")
    ap.add_argument("--width", type=int, default=1200, help="image width in pixels (default 1200)")
    ap.add_argument("--frameheight", "--height", type=int, default=16,
                    help="height of one frame in pixels (default 16)")
    ap.add_argument("--fontsize", type=int, default=12, help="font size in pixels (default 12)")
    ap.add_argument("--minwidth", type=float, default=0.1,
                    help="frames narrower than this many pixels are not drawn, nor anything above "
                         "them; their counts still add to their parents' widths (default 0.1)")
    ap.add_argument("--countname", default="calls", help='what a count counts (default "calls")')
    opts = ap.parse_args(argv)
    if (opts.width < 100 or opts.frameheight < 4 or opts.fontsize < 4
            or not 0 <= opts.minwidth < float("inf")):
        ap.error("--width must be >= 100, --frameheight and --fontsize >= 4, --minwidth >= 0")
    opts.xpad = 10
    if opts.title is None:
        opts.title = "Icicle graph" if opts.icicle else "Flame graph"
    try:
        if opts.folded == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(opts.folded, "rb") as f:
                data = f.read()
    except OSError as e:
        print("flamegraph.py: %s: %s" % (opts.folded, e.strerror), file=sys.stderr)
        return 2
    # Nothing here makes reference cycles; the collector would only rescan
    # the million lines' objects again and again.
    gc.disable()
    try:
        stacks, cum = parse(data,
                            "<stdin>" if opts.folded == "-" else opts.folded, opts.reverse)
    except InputError as e:
        print("flamegraph.py: %s" % e, file=sys.stderr)
        return 2
    del data
    # Narrowest count drawn; a zero --minwidth keeps every frame.
    total = cum[-1]
    minc = opts.minwidth * total / (opts.width - 2 * opts.xpad)
    frames = layout(stacks, cum, minc)
    del stacks, cum
    if opts.output:
        tmp = opts.output + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                render(frames, total, opts, f)
            os.replace(tmp, opts.output)
        except OSError as e:
            print("flamegraph.py: %s: %s" % (opts.output, e.strerror), file=sys.stderr)
            if os.path.exists(tmp):
                os.unlink(tmp)
            return 2
    else:
        out = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="\n", closefd=False)
        try:
            render(frames, total, opts, out)
            out.flush()
        except BrokenPipeError:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
