"""The package's layout keeps its promises: no import cycle between gmp's
modules, and no module so long that it needs a stated reason without one."""
import ast
import pathlib

import gmp

PKG = pathlib.Path(gmp.__file__).parent
MAX_LINES = 800


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(tree):
    """Every import statement, deferred ones (inside functions) included: a
    cycle broken only by deferring an import is still a cycle of design, as
    gmp/_ssl.py importing gmp.monkey, which imported it back in a function."""
    return (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))


def _graph():
    names = dict(_modules())
    graph = {}
    for name, path in names.items():
        deps = set()
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in names)
            elif node.module and node.level == 0 and node.module.startswith("gmp"):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    deps.add(sub if sub in names else node.module)
        graph[name] = deps & set(names) - {name}
    return graph


def test_the_graph_sees_the_imports():
    g = _graph()
    assert "gmp.netcore" in g["gmp.net"] and "gmp.monkey.socket" in g["gmp.monkey.ssl"]


def test_no_import_cycle():
    graph = _graph()
    state = {}

    def visit(n, stack):
        state[n] = "open"
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[n] = "done"
    for n in sorted(graph):
        if n not in state:
            visit(n, [n])


def test_no_module_over_800_lines_without_a_stated_reason():
    for name, path in _modules():
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "Length:" in doc, f"{name} has {text.count(chr(10))} lines; split it or say why ('Length: ...')"
