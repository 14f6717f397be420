# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes a deterministic C++ translation unit for the cc1plus workload:
N small classes with virtual functions, templates over them and uses of
std::map, std::vector, std::string and <algorithm>, so the compiler does
the template instantiation, overload resolution and optimisation work of
ordinary C++ code.

usage: python3 gen_cxx.py N OUT.cpp"""
import sys


def main(n, path):
    out = ["#include <algorithm>", "#include <map>", "#include <memory>", "#include <string>",
           "#include <vector>", "",
           "struct Shape { virtual ~Shape() {} virtual double area() const = 0;"
           " virtual std::string name() const = 0; };", "",
           "template <typename T> struct Registry {",
           "  std::map<std::string, std::vector<T>> by_name;",
           "  void add(const std::string &k, T v) { by_name[k].push_back(v); }",
           "  size_t count() const { size_t c = 0; for (auto &kv : by_name) c += kv.second.size();"
           " return c; }",
           "};", ""]
    for i in range(n):
        out += [
            "struct S%d : Shape {" % i,
            "  double a, b; std::vector<int> v;",
            "  S%d(double x, double y) : a(x), b(y) { for (int k = 0; k < %d; k++) v.push_back(k * %d); }"
            % (i, 3 + i % 7, i + 1),
            "  double area() const override { return a * b + %d.5; }" % i,
            "  std::string name() const override { return \"shape%d_\" + std::to_string(v.size()); }" % i,
            "  int sum() const { int s = 0; for (int x : v) s += x %% %d; return s; }" % (i % 5 + 2),
            "};",
            "static double use%d(Registry<std::shared_ptr<Shape>> &r, int k) {" % i,
            "  auto p = std::make_shared<S%d>(k * 1.5, %d.25);" % (i, i % 13),
            "  r.add(p->name(), p);",
            "  std::vector<double> xs{p->area(), double(p->sum()), %d.0};" % i,
            "  std::sort(xs.begin(), xs.end(), [](double x, double y) { return x > y; });",
            "  return xs.front() + double(r.count());",
            "}", ""]
    out += ["double run_all(int k) {", "  Registry<std::shared_ptr<Shape>> r; double t = 0;"]
    out += ["  t += use%d(r, k + %d);" % (i, i) for i in range(n)]
    out += ["  return t;", "}", ""]
    with open(path, "w", encoding="ascii") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
