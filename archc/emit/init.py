"""An `init` block as torchvision writes one: at the end of the class's `__init__`, a loop over `self.modules()` with
an `isinstance` test per op type, then a loop for the rules on members of named blocks (they run after, so that they
override the op type's rule, as torchvision's `zero_init_residual` does), and `if` around the rules under a
condition. The checks are archc/sema/inits.py's."""

from __future__ import annotations

from typing import Any

from archc import ops
from archc.ir import Architecture
from archc.lang import syntax as S
from archc.sema.evaluate import Scope, evaluate
from archc.sema.inits import INIT_TYPES, Target, bind_init, check_rule_params, resolve_target
from archc.sema.symbolic import Sym, literal

INDENT = "    "


def init_lines(definitions: dict[str, S.Definition], arch: Architecture, defn: S.Definition, scope: Scope, classes: set[str]) -> list[str]:
    """The lines that end `defn`'s `__init__`; `classes`: the blocks an instance of `defn` holds (a rule on a member of
    another block matches nothing and is left out)."""
    if defn.init is None:
        return []
    # The loop variable is torchvision's `m`, unless the rules read a parameter of that name.
    used = S.names_used(defn.init)
    var = next(v for v in ("m", "module", *(f"m{i}" for i in range(len(used) + 1))) if v not in used)
    return _Writer(definitions, arch, scope, classes | {defn.name}, var).entries(defn.init.body, 0)


class _Writer:
    def __init__(self, definitions: dict[str, S.Definition], arch: Architecture, scope: Scope, classes: set[str], var: str) -> None:
        self.definitions = definitions
        self.var = var
        self.scope = scope
        self.classes = classes
        # The module classes each op type has in the elaborated network (BatchNorm1d on flat features).
        self.op_classes: dict[str, set[str]] = {}
        for m in arch.modules():
            if m.kind == "op" and m.type in INIT_TYPES:
                self.op_classes.setdefault(m.type, set()).add(ops.OPS[m.type].module(m.attrs)[0])

    def entries(self, body: list[S.InitRule | S.InitIf], indent: int) -> list[str]:
        lines: list[str] = []
        segment: list[S.InitRule] = []
        for entry in body:
            if isinstance(entry, S.InitRule):
                segment.append(entry)
                continue
            lines += self.segment(segment, indent)
            segment = []
            test = evaluate(entry.test, self.scope)
            if isinstance(test, Sym):
                inner = self.entries(entry.body, indent + 1)
                if inner:
                    lines += [INDENT * indent + f"if {test.code}:", *inner]
            elif test:
                lines += self.entries(entry.body, indent)
        return lines + self.segment(segment, indent)

    def segment(self, rules: list[S.InitRule], indent: int) -> list[str]:
        """Two loops: the rules on op types, then those on members of blocks."""
        by_type: list[tuple[list[str], list[str]]] = []  # (classes, body), rules of equal bodies merged
        by_member: list[tuple[str, list[str]]] = []
        for rule in rules:
            target = resolve_target(self.definitions, rule)
            check_rule_params(target, rule)
            if target.block is None:
                body = self.assignments(rule, target, self.var)
                classes = sorted(self.op_classes.get(target.op, {INIT_TYPES[target.op].default_class}))
                if by_type and by_type[-1][1] == body:
                    by_type[-1][0].extend(classes)
                else:
                    by_type.append((classes, body))
            elif target.block in self.classes:
                # Rules on members of one block share its test: each of them runs (an `elif` would skip the second).
                body = self.member_body(rule, target)
                same = [i for i, (block, _) in enumerate(by_member) if block == target.block]
                if same:
                    by_member[same[0]][1].extend(body)
                else:
                    by_member.append((target.block, body))
        lines: list[str] = []
        pad = INDENT * indent
        for tests in (
            [(_isinstance(self.var, classes), body) for classes, body in by_type],
            [(f"isinstance({self.var}, {block})", body) for block, body in by_member],
        ):
            if not tests:
                continue
            lines.append(pad + f"for {self.var} in self.modules():")
            for i, (test, body) in enumerate(tests):
                lines.append(pad + INDENT + ("if " if i == 0 else "elif ") + test + ":")
                lines += [pad + INDENT * 2 + line for line in body]
        return lines

    def member_body(self, rule: S.InitRule, target: Target) -> list[str]:
        paths = [self.var + "".join(f"[{n}]" if n.isdigit() else f".{n}" for n in target.path[: i + 1]) for i in range(len(target.path))]
        guards = [f"{p} is not None" for p, always in zip(paths, target.always, strict=True) if not always]
        body = self.assignments(rule, target, paths[-1])
        if guards:
            return [f"if {' and '.join(guards)}:", *(INDENT + line for line in body)]
        return body

    def assignments(self, rule: S.InitRule, target: Target, module: str) -> list[str]:
        """`nn.init.F_(module.param, args)` for each parameter the rule sets, in the op's order; an optional
        parameter (a conv's bias) under `if ... is not None`."""
        kind = INIT_TYPES[target.op]
        # `layer.groups` in an argument is the attribute of the module the rule sets: `m.groups`, `m.fc.groups`.
        scope = Scope({f"layer.{a}": Sym(f"{module}.{a}") for a in kind.attributes}, parent=self.scope)
        lines: list[str] = []
        for param in sorted(rule.params, key=kind.params.index):
            call = rule.params[param]
            bind_init(call)
            args = [f"{module}.{param}", *(self.code(a, scope) for a in call.args)]
            args += [f"{k}={self.code(v, scope)}" for k, v in call.kwargs.items()]
            line = f"nn.init.{call.func}_({', '.join(args)})"
            if param in kind.optional:
                lines += [f"if {module}.{param} is not None:", INDENT + line]
            else:
                lines.append(line)
        return lines

    def code(self, expr: S.Expr, scope: Scope) -> str:
        value: Any = evaluate(expr, scope)
        return literal(value)


def _isinstance(var: str, classes: list[str]) -> str:
    unique = list(dict.fromkeys(classes))
    if len(unique) == 1:
        return f"isinstance({var}, {unique[0]})"
    return f"isinstance({var}, ({', '.join(unique)}))"
