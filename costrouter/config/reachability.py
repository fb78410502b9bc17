"""What a call to each model group can reach through fallbacks, computed once when a router is built.

A call's hold must cover the dearest deployment it can end up on: its group's and every
group its fallbacks reach, transitively. Walking the fallbacks on each call costs time in
proportion to the graph (131 ms a call at 4,000 groups in a ring); here the fallback graph
is folded once into its strongly connected components (Tarjan, iterative), and each
group's reachable set is its component's groups and the sets of the components below it,
computed once when the router is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["components", "reachable_group_sets"]


def components(graph: Mapping[str, Sequence[str]]) -> tuple[dict[str, int], list[list[str]]]:
    """Strongly connected components of ``graph`` (edges to unknown nodes are ignored).

    Returns each node's component index and the components, numbered so that every edge
    goes from a higher index to a lower or equal one (a component's successors come first).
    """
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component_of: dict[str, int] = {}
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = graph[node]
            descended = False
            while position < len(targets):
                target = targets[position]
                position += 1
                if target not in graph:
                    continue
                if target not in index_of:
                    work.append((node, position))
                    work.append((target, 0))
                    descended = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index_of[target])
            if descended:
                continue
            if low[node] == index_of[node]:
                found.append(_pop_component(node, stack, on_stack))
                component_of.update(dict.fromkeys(found[-1], len(found) - 1))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return component_of, found


def _pop_component(root: str, stack: list[str], on_stack: set[str]) -> list[str]:
    members: list[str] = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        members.append(member)
        if member == root:
            return members


def reachable_group_sets(fallbacks: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Each group and every group its fallbacks reach, transitively, in one pass.

    ``fallbacks`` maps every group to its fallback targets. The groups of one component
    share one set, so a ring of any size costs one set; the hold of a call is then the
    worst case over its group's set (:meth:`PriceBook.worst_case`), computed once per set.
    """
    component_of, found = components(fallbacks)
    reach: list[frozenset[str]] = []
    for index, members in enumerate(found):  # successors are numbered first, so they are done already
        below = {component_of[target] for member in members for target in fallbacks[member] if target in component_of}
        below.discard(index)
        reach.append(frozenset(members).union(*(reach[other] for other in below)))
    return {group: reach[component] for group, component in component_of.items()}
