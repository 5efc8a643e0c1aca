"""One lane of the crash soak (``benchmarks/crash_soak.py``): one backend's trials, each
a corpus change, a kill, the check, a resume and the check of a complete run."""

from __future__ import annotations

__all__ = ["Lane", "run_lane"]

import os
import random
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from soak_child import Child, child_check, child_index, fork

def _copy_over(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Lane:
    def __init__(self, backend: str, workdir: Path, files: list[Path], pool: list[Path],
                 phrases: dict[str, str], rng: random.Random, log: Callable[[str], None]):
        from consistency import corpus_state

        self.backend, self.rng, self.log = backend, rng, log
        self.home = workdir / f"home-{backend}"
        self.folder = workdir / f"corpus-{backend}"
        for d in (self.home, self.folder):
            shutil.rmtree(d, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, self.folder / f.name)
        self.initial = sorted(p.name for p in self.folder.iterdir())
        self.pool = pool
        self.phrases = phrases
        self.info = corpus_state([*files, *pool])  # every content this lane can hold
        self.seconds: dict[str, float] = {}
        self.writes: dict[str, int] = {}
        self.create_writes = 0
        self.overhead = 1.0
        self.rates: dict[str, float] = {"": 1.0}
        self.writes_per_doc = 2
        self.added = 0
        self.edits = 0
        self.validated: set[str] = set()
        self.result: dict[str, Any] = {
            "backend": backend, "kills": 0, "finished_before_kill": 0, "trials": 0,
            "inconsistent_kills": 0, "problems": [], "resume_failures": 0,
            "encoded_after_resume": 0, "minimum": 0, "excess": 0, "lost_pages": 0,
            "kill_phase": Counter(), "kinds": Counter(), "cycle_s": [], "check_s": [],
            "staging": None, "phrases_dropped": 0}

    # state of the corpus folder
    def state(self) -> dict[str, tuple[str, int]]:
        from consistency import corpus_state

        return corpus_state(sorted(self.folder.iterdir()))

    def _check(self, state: dict, before: dict, complete: bool,
               forced: bool = False) -> Child:
        """Check in a forked child. A few phrases per check (all of them would cost more
        than the kill); a phrase is used after a kill only once a complete check found its
        document, and one that a complete check does not find the first time is dropped
        (its line is not distinctive enough), not reported."""
        t = time.monotonic()
        held = {d for d, _ in state.values()} | {d for d, _ in before.values()}
        candidates = sorted(p for p, d in self.phrases.items()
                            if d in held and (complete or p in self.validated))
        chosen = {p: self.phrases[p] for p in self.rng.sample(candidates, min(3, len(candidates)))}
        child = Child(*fork(child_check, str(self.home), state, before, complete, chosen,
                             forced))
        child.run(limit=300)
        checked = child.last("checked")
        if checked is not None and complete:
            stored = set(checked["stored"])
            for phrase, doc_id in chosen.items():
                missed = [p for p in checked["problems"] if "did not find" in p
                          and repr(phrase) in p]
                if missed and phrase not in self.validated:
                    del self.phrases[phrase]
                    self.result["phrases_dropped"] += 1
                    checked["problems"] = [p for p in checked["problems"] if p not in missed]
                elif not missed and doc_id in stored:
                    self.validated.add(phrase)
        self.result["check_s"].append(time.monotonic() - t)
        return child

    def calibrate(self) -> dict[str, Any]:
        """The collection the kills start from: the corpus indexed whole, uninterrupted,
        each file timed and its writes counted (a pool document, not indexed yet, is
        estimated from its pages at the median of its kind)."""
        child = Child(*fork(child_index, str(self.home), self.backend, str(self.folder),
                             False, True))
        child.run(limit=3600)
        done = child.last("done")
        if done is None:
            raise RuntimeError(f"calibration run failed: {child.last('error')}")
        state = self.state()
        marks = [i for i, e in enumerate(child.events) if e["e"] == "file"]
        per_page: dict[str, list[float]] = {}
        for this, after in zip(marks, marks[1:]):
            path = child.events[this]["path"]
            if path in state:
                doc_id, pages = state[path]
                self.seconds[doc_id] = child.events[after]["t"] - child.events[this]["t"]
                self.writes[doc_id] = sum(e["e"] == "write" for e in child.events[this:after])
                per_page.setdefault(Path(path).suffix, []).append(self.seconds[doc_id] / pages)
        every = [v for values in per_page.values() for v in values] or [1.0]
        per_doc = statistics.median(self.writes.values()) if self.writes else 2
        self.rates = {suffix: statistics.median(v) for suffix, v in per_page.items()}
        self.rates[""] = statistics.median(every)
        self.writes_per_doc = round(per_doc)
        for f in self.pool:
            doc_id, pages = self.info[str(f.resolve())]
            self.seconds.setdefault(doc_id, pages * statistics.median(per_page.get(f.suffix)
                                                                      or every))
            # a commit's writes hardly grow with its pages; a staged batch is one more
            self.writes.setdefault(doc_id, round(per_doc) + pages // 8)
        start = child.last("start")["t"]
        if marks:
            first, last = child.events[marks[0]], child.events[marks[-1]]
            self.overhead = first["t"] - start + done["t"] - last["t"]
            self.create_writes = sum(e["e"] == "write" for e in child.events[:marks[0]])
        self.result["staging"] = done["report"]["staging"]
        check = self._check(state, {}, complete=True)
        checked = check.last("checked") or {"problems": [f"check failed: {check.last('error')}"]}
        if checked["problems"]:
            self.result["problems"].append({"trial": "calibration",
                                            "problems": checked["problems"]})
            self.result["inconsistent_kills"] += 1
        return {"seconds": round(done["t"] - start, 2), "pages": done["report"]["pages"],
                "files": len(marks) - 1,
                "writes": sum(e["e"] == "write" for e in child.events)}

    def _estimate(self, state: dict, stored: set[str], force: bool,
                  fresh: bool) -> tuple[float, int]:
        """Seconds and writes an uninterrupted run of this work takes (calibration)."""
        seconds, writes, seen = self.overhead, self.create_writes if fresh else 0, set()
        for path, (doc_id, pages) in state.items():
            if (force or doc_id not in stored) and doc_id not in seen:
                rate = self.rates.get(Path(path).suffix, self.rates[""])
                seconds += self.seconds.get(doc_id, pages * rate)  # edited: by its pages
                writes += self.writes.get(doc_id, self.writes_per_doc + pages // 8)
                seen.add(doc_id)
            else:
                seconds += 0.02
        return seconds, writes + 2  # relinks, removals and sync: a commit or two

    def rebuild(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        child = Child(*fork(child_index, str(self.home), self.backend, str(self.folder),
                             False, False))
        child.run(limit=3600)
        if child.last("done") is None:
            raise RuntimeError(f"re-indexing from scratch failed: {child.last('error')}")

    def mutate(self) -> list[str]:
        """One to three changes to the corpus folder; -> what was done.

        A file whose content was copied elsewhere in this trial keeps its content: were it
        replaced too, the content would have moved to a path indexed after the one it left,
        and the product then deletes and encodes it again by design (not a crash's cost)."""
        done: list[str] = []
        copied_from: set[Path] = set()
        for _ in range(self.rng.randint(1, 3)):
            present = sorted(self.folder.iterdir())
            kinds = ["edit", "edit", "replace", "add", "copy", "delete"]
            if len(present) <= 2:
                kinds.remove("delete")
            if len(present) >= len(self.initial) + 3:
                kinds = ["edit", "replace", "delete"]
            kind = self.rng.choice(kinds)
            pdfs = [f for f in present if f.suffix == ".pdf" and f not in copied_from]
            if kind == "edit" and pdfs:
                # a new version of the same document: bytes after %%EOF (a PDF reader
                # ignores them) give it new content, so it is encoded and replaced anew
                target = self.rng.choice(pdfs)
                self.edits += 1
                with open(target, "ab") as f:
                    f.write(b"\n%% edit %d\n" % self.edits)
                done.append(f"edit {target.name}")
            elif kind == "replace":
                targets = [f for f in present if f not in copied_from]
                target = self.rng.choice(targets) if targets else None
                sources = [f for f in [*self.pool, *present]
                           if target is not None and f.suffix == target.suffix and f != target]
                if not sources:
                    continue
                source = self.rng.choice(sources)
                _copy_over(source, target)
                copied_from.add(source)
                done.append(f"replace {target.name} by {source.name}")
            elif kind in ("add", "copy"):
                source = self.rng.choice(self.pool if kind == "add" else present)
                self.added += 1
                target = self.folder / f"added-{self.added}{source.suffix}"
                _copy_over(source, target)
                copied_from.add(source)
                done.append(f"{kind} {target.name} from {source.name}")
            else:
                target = self.rng.choice(present)
                target.unlink()
                done.append(f"delete {target.name}")
        return done

    def trial(self, number: int) -> bool:
        """One kill, check, resume, check; -> whether a kill happened."""
        res = self.result
        t0 = time.monotonic()
        before = self.state()
        roll = self.rng.random()
        force = False
        if roll < 0.15:
            kind, changes = "fresh", ["empty collection"]
            shutil.rmtree(self.home, ignore_errors=True)
            before = {}
        elif roll < 0.25:
            kind, changes, force = "force", ["--force"], True
        else:
            kind, changes = "mutate", self.mutate()
        state = self.state()
        stored = {d for d, _ in before.values()}
        estimate, writes = self._estimate(state, stored, force, kind == "fresh")
        if self.rng.random() < 0.5:  # the parent kills it, at a random moment
            kill_after, kill_at, after = self.rng.uniform(0, estimate), None, False
            how = "timed"
        else:  # it kills itself at a random write, just before or just after it
            kill_after, kill_at = None, self.rng.randint(1, max(1, writes))
            after = self.rng.random() < 0.5
            how = f"write {kill_at}/{writes} ({'after' if after else 'before'})"
        child = Child(*fork(child_index, str(self.home), self.backend, str(self.folder), force,
                             True, kill_at, after))
        child.run(kill_after=kill_after, limit=max(120, 10 * estimate))
        res["trials"] += 1
        if child.killed_at is None:
            res["finished_before_kill"] += 1
            if child.last("done") is None:
                res["problems"].append({"trial": number, "kind": kind, "changes": changes,
                                        "problems": [f"index failed: {child.last('error')}"]})
                res["inconsistent_kills"] += 1
            return False
        res["kills"] += 1
        res["kinds"][kind] += 1
        res["kill_phase"][child.phase_at_kill] += 1

        problems: list[str] = []
        resumed = ""
        check = self._check(state, before, complete=False, forced=force)
        after_kill = check.last("checked")
        if after_kill is None:
            problems.append(f"check after the kill failed: {check.last('error')}")
            after_kill = {"stored": [], "pending": {}}
        problems += [f"after the kill: {p}" for p in after_kill.get("problems", [])]

        resume = Child(*fork(child_index, str(self.home), self.backend, str(self.folder), False,
                              False))
        resume.run(limit=max(300, 20 * estimate))
        done = resume.last("done")
        if done is None:
            res["resume_failures"] += 1
            problems.append(f"resume failed: {resume.last('error') or 'killed (hung)'}")
        else:
            report = done["report"]
            if report["failed"]:
                problems.append(f"resume reported failed files: {report['failed']}")
            stored_now = set(after_kill["stored"])
            pending = after_kill["pending"]
            needed = {d for d, _ in state.values() if d not in stored_now}
            pages = {d: n for d, n in state.values()}
            minimum = sum(max(0, pages[d] - pending.get(d, 0)) for d in needed)
            res["encoded_after_resume"] += report["encoded"]
            res["minimum"] += minimum
            res["excess"] += max(0, report["encoded"] - minimum)
            resumed = f"resume encoded {report['encoded']} pages (minimum {minimum})"
            reached: dict[str, int] = {}
            for e in child.events:
                if e["e"] == "page" and e["path"] in state:
                    d = state[e["path"]][0]
                    reached[d] = max(reached.get(d, 0), int(e["n"]))
            res["lost_pages"] += sum(max(0, n - pending.get(d, 0)) for d, n in reached.items()
                                     if d in needed)
            final = self._check(state, {}, complete=True)
            checked = final.last("checked")
            if checked is None:
                problems.append(f"check after the resume failed: {final.last('error')}")
            else:
                problems += [f"after the resume: {p}" for p in checked["problems"]]
        if problems:
            res["inconsistent_kills"] += 1
            res["problems"].append({"trial": number, "kind": kind, "changes": changes,
                                    "killed_at_s": round(child.killed_at, 3), "how": how,
                                    "phase": child.phase_at_kill,
                                    "last_events": child.events[-4:], "problems": problems})
            self.rebuild()  # go on from a collection known to be whole
        res["cycle_s"].append(time.monotonic() - t0)
        self.log(f"[{self.backend}] kill {res['kills']}: {kind} {', '.join(changes)}; "
                 f"{how}: killed at {child.killed_at:.2f}/{estimate:.2f} s "
                 f"({child.phase_at_kill}); {resumed}; "
                 f"{'PROBLEMS: ' + '; '.join(problems) if problems else 'consistent'}")
        return True


def run_lane(backend: str, kills: int, workdir: Path, files: list[Path], pool: list[Path],
             phrases: dict[str, str], seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(f"{seed}-{backend}")
    random.seed(f"{seed}-{backend}-timing")
    lane = Lane(backend, workdir, files, pool, dict(phrases), rng, log)
    t0 = time.monotonic()
    calibration = lane.calibrate()
    log(f"[{backend}] calibration: {calibration}")
    trials = 0
    while lane.result["kills"] < kills and trials < 4 * kills + 10:
        trials += 1
        lane.trial(trials)
    res = lane.result
    cycles, checks = res.pop("cycle_s"), res.pop("check_s")
    res.update(calibration=calibration, seconds=round(time.monotonic() - t0, 1),
               median_cycle_s=round(statistics.median(cycles), 2) if cycles else None,
               median_check_s=round(statistics.median(checks), 2) if checks else None,
               kill_phase=dict(res["kill_phase"]), kinds=dict(res["kinds"]))
    shutil.rmtree(lane.home, ignore_errors=True)
    shutil.rmtree(lane.folder, ignore_errors=True)
    return res
