#!/usr/bin/env python3
"""Finds the external commands that scripts/, checks/ and bench/ call, and checks that each one is
on a fresh Debian 12 machine of this kind or installed by scripts/deps.sh.

How a command is found: every shell script is parsed with shfmt (its syntax tree as JSON), and the
first word of every simple command is taken, after unwrapping the commands that run another command
(timeout, ip netns exec, env, setsid, the scripts' own wrapper functions, `sh -c '...'` strings,
trap strings). Builtins, the scripts' own functions and the project's own programs are left out.
Python files and inline python heredocs are checked for the modules they import.

How a command is checked: it must be on the PATH (deps.sh has run), and the Debian package that
owns it (`dpkg -S`) must be either on a fresh machine (checks/deps/fresh-machine-packages.txt, the
workplace's list of what a new machine of this kind has) or in `scripts/deps.sh --list`.

Usage: external_commands.py [--list]     --list prints each command with where it is called
Exit: 0 every command is provided, 1 otherwise (each missing command is named with a call site).
"""
import json, os, re, shutil, subprocess, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TREES = ["scripts", "checks", "bench"]
FRESH_LIST = os.path.join(ROOT, "checks", "deps", "fresh-machine-packages.txt")
# The project's own programs (built by swift build or in the tree), not system commands.
PROJECT_PROGRAMS = {"lvsd", "lvsadm", "lvs-bench", "lvs-lab", "ipvsadm", "run-all.sh"}
# Commands that run the command given after a fixed or option-shaped prefix.
# What a variable or command substitution inside a parsed string becomes: never a command name.
PLACEHOLDER = "__VAR__"
SIMPLE_WRAPPERS = {"nohup", "setsid", "exec", "builtin", "time", "sudo", "unbuffer"}


# Commands that run another command after their options: (options that take a value, positional
# arguments before the command).
OPTION_WRAPPERS = {
    "nice": ({"-n"}, 0), "ionice": ({"-c", "-n", "-p"}, 0), "stdbuf": ({"-i", "-o", "-e"}, 0),
    "taskset": ({"-c"}, 1), "chrt": ({"-p"}, 1), "nsenter": ({"-t", "-S", "-G"}, 0),
    "unshare": ({"--propagation", "-S", "-G", "--setuid", "--setgid"}, 0),
    "xargs": ({"-I", "-P", "-n", "-L", "-d", "-s"}, 0), "flock": ({"-w", "-E"}, 1),
}


SYSTEM_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


BASH_NAMES = set(sh("bash", "-c", "compgen -b; compgen -k").stdout.split())


def word_text(word):
    """A word's text when it is literal; '$@' for "$@"; None when it depends on a variable."""
    out = []
    for part in word.get("Parts", []):
        t = part.get("Type")
        if t == "Lit":
            out.append(part.get("Value", ""))
        elif t == "SglQuoted":
            out.append(part.get("Value", ""))
        elif t == "DblQuoted":
            inner = part.get("Parts", [])
            if len(inner) == 1 and inner[0].get("Type") == "ParamExp" and inner[0]["Param"]["Value"] == "@":
                return "$@"
            for p in inner:
                if p.get("Type") != "Lit":
                    return None
                out.append(p.get("Value", ""))
        elif t == "ParamExp" and part["Param"]["Value"] == "@":
            return "$@"
        else:
            return None
    return "".join(out)


def script_text(word):
    """A string argument (sh -c, trap) as script text, variables replaced by a placeholder."""
    out = []
    def walk(parts):
        for part in parts:
            t = part.get("Type")
            if t in ("Lit", "SglQuoted"):
                out.append(part.get("Value", ""))
            elif t == "DblQuoted":
                walk(part.get("Parts", []))
            else:
                out.append(PLACEHOLDER)
    walk(word.get("Parts", []))
    return "".join(out)


def unwrap(args, wrappers):
    """The index of the command actually run by a simple command's words, or None."""
    i = 0
    while i < len(args):
        name = word_text(args[i])
        if name is None or name == "$@":
            return i
        base = os.path.basename(name)
        if base in SIMPLE_WRAPPERS:
            i += 1
        elif base == "command" and i + 1 < len(args) and (word_text(args[i + 1]) or "").startswith("-"):
            return None  # command -v X: a look-up, not a call
        elif base == "command":
            i += 1
        elif base == "timeout":
            i += 1
            while i < len(args) and (word_text(args[i]) or "").startswith("-"):
                opt = word_text(args[i])
                i += 2 if opt in ("-s", "-k") else 1
            i += 1  # the duration
        elif base == "env":
            i += 1
            while i < len(args):
                w = word_text(args[i])
                if w is not None and (w.startswith("-") or "=" in w):
                    i += 1
                elif w is None and "=" in json.dumps(args[i].get("Parts", [{}])[0].get("Value", "")):
                    i += 1
                else:
                    break
        elif base in OPTION_WRAPPERS:
            i += 1
            with_arg, positional = OPTION_WRAPPERS[base]
            while i < len(args) and (word_text(args[i]) or "").startswith("-"):
                opt = word_text(args[i])
                if base == "taskset" and opt == "-c":
                    positional = 0
                i += 2 if opt in with_arg else 1
            if base == "flock" and i + 1 < len(args) and word_text(args[i + 1]) == "-c":
                return None  # flock FILE -c STRING: a shell string
            if base == "flock" and i + 1 >= len(args):
                return None  # flock FD: no command
            i += positional
        elif base == "ip" and i + 3 < len(args) and word_text(args[i + 1]) == "netns" and word_text(args[i + 2]) == "exec":
            i += 4
        elif base in wrappers:
            i += 1 + wrappers[base]
        else:
            return i
    return None


def walk(node, visit):
    if isinstance(node, dict):
        visit(node)
        for v in node.values():
            if isinstance(v, (dict, list)):
                walk(v, visit)
    elif isinstance(node, list):
        for v in node:
            walk(v, visit)


def parse(text, path):
    r = sh("shfmt", "--to-json", "-ln", "bash", input=text)
    if r.returncode != 0:
        raise SystemExit(f"external_commands: shfmt cannot parse {path}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def shell_files():
    for tree in TREES:
        for d, _, files in os.walk(os.path.join(ROOT, tree)):
            for f in sorted(files):
                p = os.path.join(d, f)
                if f.endswith(".sh"):
                    yield p
                elif f.endswith(".py"):
                    continue
                else:
                    try:
                        with open(p, "rb") as fh:
                            head = fh.readline()
                    except OSError:
                        continue
                    if head.startswith(b"#!") and re.search(rb"\b(ba)?sh\b", head):
                        yield p


def functions_of(tree):
    """Function names, and for those that run "$@" as a command, how many leading arguments they take."""
    names, wrappers = set(), {}
    def visit(n):
        if n.get("Type") != "FuncDecl":
            return
        name = n["Name"]["Value"]
        names.add(name)
        shifts = [0]
        def inner(m):
            if m.get("Type") != "CallExpr" or not m.get("Args"):
                return
            first = word_text(m["Args"][0])
            if first == "shift":
                shifts[0] += int(word_text(m["Args"][1]) or 1) if len(m["Args"]) > 1 else 1
                return
            idx = unwrap(m["Args"], {})
            if idx is not None and word_text(m["Args"][idx]) == "$@" and name not in wrappers:
                wrappers[name] = shifts[0]
        walk(n["Body"], inner)
    walk(tree, visit)
    return names, wrappers


def collect():
    trees = {}
    for p in shell_files():
        with open(p, encoding="utf-8", errors="replace") as fh:
            trees[p] = parse(fh.read(), p)
    all_funcs, file_wrappers = set(), {}
    for p, t in trees.items():
        names, wr = functions_of(t)
        all_funcs |= names
        file_wrappers[p] = wr
    lib = file_wrappers.get(os.path.join(ROOT, "checks", "e2e", "lib.sh"), {})
    calls = {}   # command -> first call site
    modules = {} # python module -> first import site
    def note(cmd, where):
        calls.setdefault(cmd, where)
    def scan(tree, path, line_base=0):
        # a file's own functions first, then lib.sh's (which the tests source)
        all_wrappers = dict(lib)
        all_wrappers.update(file_wrappers.get(path, {}))
        def visit(n):
            if n.get("Type") != "CallExpr" or not n.get("Args"):
                return
            args = n["Args"]
            idx = unwrap(args, all_wrappers)
            if idx is None:
                return
            name = word_text(args[idx])
            line = line_base + args[idx]["Pos"]["Line"]
            where = f"{os.path.relpath(path, ROOT)}:{line}"
            if name is None or name == "$@" or name == "" or PLACEHOLDER in name:
                return
            base = os.path.basename(name)
            if base in ("sh", "bash") and idx + 2 < len(args) and word_text(args[idx + 1]) == "-c":
                scan(parse(script_text(args[idx + 2]), path), path, line - 1)
            if base == "trap" and idx + 1 < len(args) and word_text(args[idx + 1]) not in ("-", ""):
                scan(parse(script_text(args[idx + 1]), path), path, line - 1)
            if base.startswith("python"):
                texts = []
                if idx + 2 < len(args) and word_text(args[idx + 1]) == "-c":
                    texts.append(script_text(args[idx + 2]))
                for st in [n]:
                    pass
                for t in texts:
                    for m in re.finditer(r"(?:^|;)\s*(?:from|import)\s+([A-Za-z_]\w*)", t, re.M):
                        if PLACEHOLDER not in m.group(1):
                            modules.setdefault(m.group(1), where)
            if "/" in name and not name.startswith("/"):
                return  # a path in the tree (./x, dir/x)
            if base in BASH_NAMES or base in all_funcs or base in PROJECT_PROGRAMS or base.startswith("test_"):
                return
            if not re.fullmatch(r"[A-Za-z0-9_.+-]+", base):
                return
            note(name if name.startswith("/") else base, where)
        walk(tree, visit)
        # heredocs fed to python
        def heredocs(n):
            if n.get("Type") is not None or "Cmd" not in n:
                return
            cmd = n.get("Cmd") or {}
            if cmd.get("Type") != "CallExpr" or not cmd.get("Args"):
                return
            idx = unwrap(cmd["Args"], all_wrappers)
            if idx is None or not (word_text(cmd["Args"][idx]) or "").split("/")[-1].startswith("python"):
                return
            for r in n.get("Redirs") or []:
                if r.get("Hdoc"):
                    text = script_text(r["Hdoc"])
                    for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", text, re.M):
                        modules.setdefault(m.group(1), f"{os.path.relpath(path, ROOT)}:{line_base + r['Hdoc']['Pos']['Line']}")
        walk(tree, heredocs)
    for p, t in trees.items():
        scan(t, p)
    for tree in TREES:
        for d, _, files in os.walk(os.path.join(ROOT, tree)):
            for f in files:
                if f.endswith(".py") and f != os.path.basename(__file__):
                    p = os.path.join(d, f)
                    with open(p, encoding="utf-8") as fh:
                        for i, l in enumerate(fh, 1):
                            m = re.match(r"\s*(?:from|import)\s+([A-Za-z_]\w*)", l)
                            if m:
                                modules.setdefault(m.group(1), f"{os.path.relpath(p, ROOT)}:{i}")
    return calls, modules


def owner(path):
    """The Debian package that owns a file, trying the merged-/usr spellings."""
    cands = [path, os.path.realpath(path)]
    for c in list(cands):
        if c.startswith("/usr/"):
            cands.append(c[4:])
        else:
            cands.append("/usr" + c)
    for c in cands:
        r = sh("dpkg-query", "-S", c)
        for line in r.stdout.splitlines():
            if not line.startswith("diversion by") and ": " in line:
                return line.split(": ")[0].split(",")[0].strip()
    return None


def main():
    listing = "--list" in sys.argv
    fresh = set()
    with open(FRESH_LIST) as fh:
        for l in fh:
            f = l.split()
            if len(f) >= 2 and f[0] == "apt":
                fresh.add(f[1])
    r = sh(os.path.join(ROOT, "scripts", "deps.sh"), "--list")
    if r.returncode != 0:
        raise SystemExit(f"external_commands: scripts/deps.sh --list failed: {r.stderr.strip()}")
    deps = {}
    for l in r.stdout.splitlines():
        if l.strip():
            cmd, pkg = l.split()[:2]
            deps[pkg] = cmd
    calls, modules = collect()
    problems = []
    for cmd, where in sorted(calls.items()):
        path = cmd if cmd.startswith("/") else shutil.which(cmd)
        if path is None or not os.path.exists(path):
            problems.append(f"{cmd} (called at {where}) is not installed: add it to scripts/deps.sh")
            continue
        if path.startswith("/opt/swift/"):
            pkg = "(the Swift toolchain at /opt/swift)"
        else:
            pkg = owner(path)
            if pkg is None and not cmd.startswith("/"):
                # e.g. a python3 of pyenv's ahead on the PATH: the system's copy is what a fresh
                # machine and deps.sh provide
                for d in SYSTEM_DIRS:
                    if os.path.exists(os.path.join(d, cmd)):
                        pkg = owner(os.path.join(d, cmd))
                        if pkg:
                            break
            if pkg is None:
                problems.append(f"{cmd} (called at {where}) is {path}, which no Debian package owns: install it from a package in scripts/deps.sh")
                continue
            if pkg not in fresh and pkg not in deps:
                problems.append(f"{cmd} (called at {where}) comes from package {pkg}, which a fresh machine lacks and scripts/deps.sh does not install")
        if listing:
            print(f"{cmd:16} {pkg:28} {where}")
    stdlib = set(sys.stdlib_module_names)
    local = {os.path.splitext(f)[0] for t in TREES for _, _, fs in os.walk(os.path.join(ROOT, t)) for f in fs if f.endswith(".py")}
    for mod, where in sorted(modules.items()):
        if mod in stdlib or mod in local or mod == "__future__":
            continue
        r = sh("/usr/bin/python3", "-c", f"import {mod}, os; print(os.path.dirname({mod}.__file__))")
        if r.returncode != 0:
            problems.append(f"python module {mod} (imported at {where}) is not installed: add its package to scripts/deps.sh")
            continue
        pkg = owner(r.stdout.strip())
        if pkg is None or (pkg not in fresh and pkg not in deps):
            problems.append(f"python module {mod} (imported at {where}) comes from {pkg or 'no Debian package'}, which a fresh machine lacks and scripts/deps.sh does not install")
        if listing:
            print(f"py:{mod:13} {pkg or '?':28} {where}")
    for p in problems:
        print(f"MISSING: {p}")
    print(f"external commands: {len(calls)} found, {len(problems)} not provided")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
