"""Choosing the plate fine-tuning recipe by cross-validation on the training photos only.

    python benchmarks/transfer_recipe.py [--plates ../shared/datasets/plates-eu] \
        [--recipes base mix50 ...] [--folds 3] [--seeds 0]

`benchmarks/transfer.py` scores every reader on 22 test photos that no training or tuning
run may see. Its fine-tuning recipe is chosen here instead: the 86 training photos of the
stored split (`benchmarks/splits/plates_eu.json`) are cut into `--folds` folds by a
permutation seeded with 0; each candidate recipe fine-tunes `crnn_small.synth_plates` on
all folds but one (10 % of them for validation, as in the benchmark) and reads the plates
of the fold left out, for every fold and seed. A recipe's score is the CER over all the
held-out crops (normalised as in the benchmark: upper case, 0-9 and A-Z), with the σ over
(fold, seed) cells.

Candidates (`RECIPES`) change one lever at a time from the benchmark's recipe (40 epochs,
batch 16, Adam 1e-3 cosine, 48 px, charset `full`, `--augment-lines`): synthetic plates
mixed into every batch (`--synthetic-share`, `--plate-fraction`), a longer schedule, a
lower learning rate; and the line height (32, 48 or 64 px: the shipped 48-px weights
continued for `ADAPT_EPOCHS` epochs of synthetic data at each height, then fine-tuned at
it). Every cell is a resumable run folder under `--work`. Writes
`results/transfer_recipe.json` and `transfer_recipe.md`.

Polarity, a second stage: plates come dark on light and light on dark, and the training
photos hold only the first kind, so the upright score cannot see what fine-tuning does to
the other. Every stage-2 cell therefore also reads its held-out crops inverted (1 − x); the
stage-1 winner, mix25, is run again (`mix25_invert0`: new runs, so its upright score beside
mix25's is the CV's own run-to-run noise) and with a share of its real crops inverted each
epoch (`--invert-lines` 0.2 and 0.4; PP-OCR's recognition augmentation inverts 40 %). Among
those three (`POLARITY_CANDIDATES`), the recipe with the lowest mean of the upright and the
inverted CV CER wins.

Labels, a third stage: five plates-eu annotations write the letter O in the digit field of an
AA999AA plate, three of them among the training photos. The stage-2 winner is run again on
training annotations corrected (`benchmarks.transfer.corrected_text`; `mix25_invert40_clean`)
and both are scored, upright and inverted, against corrected held-out labels
(`LABEL_CANDIDATES`); the lower mean is the benchmark's recipe.

Decoding, a fourth stage: the chosen recipe's models read their held-out crops greedily and by
prefix beam search (width 10), scored as in stage 3; the lower mean is how the benchmark
decodes (`benchmarks.transfer.DECODING`).

Polarity at reading, a fifth stage: the same models, decoded as stage 4 chose, read every
held-out crop as given, or both as given and inverted, keeping the read of the higher CTC
log-probability (`zoo.training.tasks.text.read_lines(polarity="either")`); scored as in stage
3, the lower mean is how the benchmark reads (`benchmarks.transfer.POLARITY`), a tie keeping
the crop as given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zoo import quiet  # noqa: E402

quiet.silence_tensorflow()

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from benchmarks.transfer import (DEFAULT_PLATES, FINE_TUNE_FROM, REPO,  # noqa: E402
                                 corrected_cer, materialise, plate_split, read_with_model,
                                 scores)

BASE = {"epochs": 40, "batch_size": 16, "learning_rate": 1e-3,
        "options": {"charset": "full", "image_height": 48, "augment_lines": True}}
RECIPES = {
    "base": {},
    "mix25": {"options": {"synthetic_share": 0.25, "plate_fraction": 1.0}},
    "mix50": {"options": {"synthetic_share": 0.5, "plate_fraction": 1.0}},
    "mix50_lines": {"options": {"synthetic_share": 0.5, "plate_fraction": 0.5}},
    "epochs80": {"epochs": 80},
    "mix50_epochs80": {"epochs": 80, "options": {"synthetic_share": 0.5,
                                                 "plate_fraction": 1.0}},
    "lr5e-4": {"learning_rate": 5e-4},
    # line height: the shipped weights (48 px) continued for ADAPT_EPOCHS at the height,
    # then fine-tuned at it; 48 px continued alike, so that every height has the same budget
    "h32": {"adapt_height": 32, "options": {"image_height": 32}},
    "h48": {"adapt_height": 48},
    "h64": {"adapt_height": 64, "options": {"image_height": 64}},
    # polarity (stage 2): the stage-1 winner again (its own runs, read both ways) and with
    # a share of its real crops inverted
    "mix25_invert0": {"options": {"synthetic_share": 0.25, "plate_fraction": 1.0,
                                  "invert_lines": 0.0}},
    "mix25_invert20": {"options": {"synthetic_share": 0.25, "plate_fraction": 1.0,
                                   "invert_lines": 0.2}},
    "mix25_invert40": {"options": {"synthetic_share": 0.25, "plate_fraction": 1.0,
                                   "invert_lines": 0.4}},
    # labels (stage 3): the stage-2 winner trained on annotations with O corrected to 0 in
    # the digit field of AA999AA plates (`benchmarks.transfer.corrected_text`)
    "mix25_invert40_clean": {"correct_train_labels": True,
                             "options": {"synthetic_share": 0.25, "plate_fraction": 1.0,
                                         "invert_lines": 0.4}},
}
POLARITY_CANDIDATES = ("mix25_invert0", "mix25_invert20", "mix25_invert40")
LABEL_CANDIDATES = ("mix25_invert40", "mix25_invert40_clean")
DECODINGS = {"greedy": "", "beam": "_beam"}  # stage 4: the cell's reads key suffix
POLARITY_READINGS = {"upright": "", "either": "_either"}  # stage 5: infix before that suffix
ADAPT_EPOCHS = 3
FOLD_SEED = 0


def recipe_settings(name: str) -> dict:
    """The benchmark's recipe with candidate `name`'s changes."""
    change = RECIPES[name]
    return {**BASE, **{k: v for k, v in change.items() if k != "options"},
            "options": {**BASE["options"], **change.get("options", {})}}


def adapted(args, height: int) -> str:
    """The run folder of `FINE_TUNE_FROM` continued for ADAPT_EPOCHS epochs of 12,800 new
    synthetic samples (its own data: half plain lines, half plates) at `height` px; the
    CRNN's weights do not depend on the height, so the 48-px weights load at any height."""
    from zoo.training import TrainConfig, run

    out = args.work / f"adapt-h{height}"
    if not (out / "metrics.json").exists():
        print(f"[recipe] adapting {FINE_TUNE_FROM} to {height} px", flush=True)
        run(TrainConfig(model="crnn_small", dataset="synth_text", epochs=ADAPT_EPOCHS,
                        train_limit=12800, test_limit=500, batch_size=32, learning_rate=5e-4,
                        seed=0, init_from=FINE_TUNE_FROM, out=str(out), resume=True,
                        verbose=2 if args.verbose else 0,
                        options={"charset": "full", "image_height": height,
                                 "plate_fraction": 0.5}))
    return str(out)


def folds(train_photos, k: int) -> list:
    """`k` disjoint folds of the training photos (a permutation seeded with FOLD_SEED)."""
    order = np.random.default_rng(FOLD_SEED).permutation(len(train_photos))
    return [sorted(train_photos[i] for i in order[f::k]) for f in range(k)]


def cell(args, name, fold, seed, folders) -> dict:
    import keras

    from zoo.training import TrainConfig, run

    settings = recipe_settings(name)
    out = args.work / name / f"fold{fold}-seed{seed}"
    if not (out / "metrics.json").exists():
        print(f"[recipe] {name}, fold {fold}, seed {seed}: training", flush=True)
        run(TrainConfig(model="crnn_small", dataset=f"boxes:{folders['train']}",
                        test_dataset=f"boxes:{folders['test']}", epochs=settings["epochs"],
                        batch_size=settings["batch_size"],
                        learning_rate=settings["learning_rate"], validation_split=0.1,
                        seed=seed, out=str(out), resume=True,
                        init_from=(adapted(args, settings["adapt_height"])
                                   if "adapt_height" in settings else FINE_TUNE_FROM),
                        verbose=2 if args.verbose else 0, options=settings["options"]))
    model = keras.saving.load_model(out / "model.keras")
    truths, reads, _ = read_with_model(model, folders["test"])
    _, inverted, _ = read_with_model(model, folders["test"], invert=True)
    _, beam, _ = read_with_model(model, folders["test"], strategy="beam")
    _, beam_inverted, _ = read_with_model(model, folders["test"], invert=True, strategy="beam")
    result = {"fold": fold, "seed": seed, "lines": len(truths), "truths": truths,
              "reads": reads, **scores(truths, reads), "reads_inverted": inverted,
              "cer_inverted": scores(truths, inverted)["cer"], "reads_beam": beam,
              "reads_inverted_beam": beam_inverted}
    for decoding, suffix in DECODINGS.items():
        for invert in (False, True):
            key = f"reads{'_inverted' if invert else ''}_either{suffix}"
            result[key] = read_with_model(model, folders["test"], invert=invert,
                                          strategy=decoding, polarity="either")[1]
    print(f"[recipe] {name}, fold {fold}, seed {seed}: CER {result['cer']:.4f}, "
          f"inverted {result['cer_inverted']:.4f}", flush=True)
    return result


def common_seeds(rows) -> list:
    return sorted(set.intersection(*(set(r.get("seeds", [0])) for r in rows)))


def pooled(row, seeds, key="reads") -> tuple:
    """The held-out truths and reads (`key`: upright or inverted, greedy or beam) of `row`'s
    cells of `seeds`, pooled over folds and seeds."""
    kept = [c for c in row["cells"] if c["seed"] in seeds]
    return [t for c in kept for t in c["truths"]], [r for c in kept for r in c[key]]


def pooled_cer(row, seeds, key="reads") -> float:
    """CER over the held-out crops of `row`'s cells of `seeds`, read upright or inverted."""
    return scores(*pooled(row, seeds, key))["cer"]


def pooled_corrected_cer(row, seeds, key="reads") -> float:
    """`pooled_cer` scored against the held-out labels with `corrected_text` applied: what the
    plates say rather than what five of their annotations wrote."""
    return corrected_cer(*pooled(row, seeds, key))


def polarity_stage(recipes) -> dict:
    """Stage 2: the candidates' upright and inverted CV CER on their common seeds, and the
    one with the lowest mean of the two (nothing chosen until every candidate has run with
    inverted reads)."""
    rows = {n: recipes[n] for n in POLARITY_CANDIDATES if n in recipes}
    if len(rows) < len(POLARITY_CANDIDATES) or not all(
            "reads_inverted" in c for r in rows.values() for c in r["cells"]):
        return {"candidates": list(POLARITY_CANDIDATES), "chosen": None}
    seeds = common_seeds(rows.values())
    table = {n: {"cer": pooled_cer(r, seeds), "cer_inverted": pooled_cer(r, seeds,
                                                                         "reads_inverted")}
             for n, r in rows.items()}
    for row in table.values():
        row["mean"] = (row["cer"] + row["cer_inverted"]) / 2
    return {"candidates": list(POLARITY_CANDIDATES), "seeds": seeds, "rows": table,
            "chosen": min(table, key=lambda n: table[n]["mean"])}


def label_stage(recipes, incumbent) -> dict:
    """Stage 3: the stage-2 winner trained on the labels as published against on corrected
    ones, both scored upright and inverted against corrected held-out labels on their common
    seeds; the lower mean wins (nothing chosen unless the stage-2 winner is the incumbent
    `LABEL_CANDIDATES[0]` and both have run)."""
    if incumbent != LABEL_CANDIDATES[0] or not all(n in recipes for n in LABEL_CANDIDATES):
        return {"candidates": list(LABEL_CANDIDATES), "chosen": None}
    rows = {n: recipes[n] for n in LABEL_CANDIDATES}
    seeds = common_seeds(rows.values())
    table = {n: {"cer": pooled_corrected_cer(r, seeds),
                 "cer_inverted": pooled_corrected_cer(r, seeds, "reads_inverted"),
                 "cer_published": pooled_cer(r, seeds)} for n, r in rows.items()}
    for row in table.values():
        row["mean"] = (row["cer"] + row["cer_inverted"]) / 2
    return {"candidates": list(LABEL_CANDIDATES), "seeds": seeds, "rows": table,
            "chosen": min(table, key=lambda n: table[n]["mean"])}


def reading_stage(recipes, incumbent, candidates: dict, needs: str) -> dict:
    """The incumbent recipe's held-out crops read in each of the ways `candidates` names
    ({name: the cells' reads key suffix}; the same models), scored upright and inverted
    against corrected held-out labels as in stage 3; the lower mean wins, a tie keeps the
    first (nothing chosen before every cell has the reads key `needs`)."""
    row = recipes.get(incumbent)
    if row is None or not all(needs in c for c in row["cells"]):
        return {"candidates": list(candidates), "chosen": None}
    seeds = row.get("seeds", [0])
    table = {}
    for name, suffix in candidates.items():
        table[name] = {
            "cer": pooled_corrected_cer(row, seeds, "reads" + suffix),
            "cer_inverted": pooled_corrected_cer(row, seeds, "reads_inverted" + suffix)}
        table[name]["mean"] = (table[name]["cer"] + table[name]["cer_inverted"]) / 2
    return {"candidates": list(candidates), "recipe": incumbent, "seeds": seeds, "rows": table,
            "chosen": min(table, key=lambda d: table[d]["mean"])}


def decoding_stage(recipes, incumbent) -> dict:
    """Stage 4: greedy against beam-search decoding (`reading_stage`)."""
    return reading_stage(recipes, incumbent, DECODINGS, "reads_beam")


def polarity_reading_stage(recipes, incumbent, decoding) -> dict:
    """Stage 5: every crop read as given against read both as given and inverted, keeping the
    likelier read (`read_lines(polarity="either")`), both decoded by stage 4's `decoding`
    (`reading_stage`)."""
    suffix = DECODINGS.get(decoding)
    if suffix is None:
        return {"candidates": list(POLARITY_READINGS), "chosen": None}
    candidates = {name: f"{infix}{suffix}" for name, infix in POLARITY_READINGS.items()}
    return reading_stage(recipes, incumbent, candidates, f"reads_either{suffix}")


def _cer_cells(row) -> str:
    """The "CV CER, upright | CV CER, inverted | mean" cells of a stage table's row."""
    return (f"{100 * row['cer']:.2f} % | {100 * row['cer_inverted']:.2f} % | "
            f"{100 * row['mean']:.2f} %")


def markdown(results) -> str:
    common = ", ".join(map(str, results["common_seeds"]))
    rows = [f"| recipe | changes | CV CER, seed {common} | seeds run | CV CER, all its seeds "
            f"| σ over cells | plates read exactly |", "|---|---|---|---|---|---|---|"]
    stage_one = {n: r for n, r in results["recipes"].items() if "cer_common_seeds" in r}
    for name, row in sorted(stage_one.items(), key=lambda kv: kv[1]["cer_common_seeds"]):
        rows.append(f"| {name} | {json.dumps(RECIPES[name]) if RECIPES[name] else '—'} | "
                    f"{100 * row['cer_common_seeds']:.2f} % | "
                    f"{', '.join(map(str, row.get('seeds', [0])))} | "
                    f"{100 * row['cer']:.2f} % | {100 * row['cer_cells']['std']:.2f} | "
                    f"{100 * row['sequence_accuracy']:.1f} % |")
    text = (f"# Fine-tuning recipe chosen by {results['folds']}-fold cross-validation on the "
            f"{results['train_photos']} training photos\n\n## Stage 1: upright crops\n\n" +
            "\n".join(rows) + f"\n\nStage 1 chooses **{results['chosen_upright']}** (lowest CV "
            f"CER on the seeds every row has).\n")
    polarity = results.get("polarity", {})
    if polarity.get("chosen"):
        text += ("\n## Stage 2: polarity\n\nThe training photos hold only dark-on-light "
                 "plates; every held-out crop is also read inverted (light on dark). Seeds "
                 f"{', '.join(map(str, polarity['seeds']))}.\n\n"
                 "| recipe | inverted training crops | CV CER, upright | CV CER, inverted | "
                 "mean |\n|---|---|---|---|---|\n")
        for name, row in polarity["rows"].items():
            share = recipe_settings(name)["options"].get("invert_lines", 0.0)
            text += f"| {name} | {100 * share:.0f} % | {_cer_cells(row)} |\n"
        base, rerun = results["chosen_upright"], POLARITY_CANDIDATES[0]
        if base in results["recipes"] and rerun in polarity["rows"]:
            seeds = polarity["seeds"]
            text += (f"\n{rerun} is {base} run anew: {100 * polarity['rows'][rerun]['cer']:.2f} % "
                     f"upright against {100 * pooled_cer(results['recipes'][base], seeds):.2f} "
                     f"% in stage 1 on the same seeds, the CV's own run-to-run noise.\n")
        text += f"\nStage 2 chooses **{polarity['chosen']}** (lowest mean).\n"
    labels = results.get("labels", {})
    if labels.get("chosen"):
        text += ("\n## Stage 3: labels\n\nFive plates-eu annotations write the letter O in "
                 "the digit field of an AA999AA plate (three of them among the training "
                 "photos). The stage-2 winner is trained on the labels as published and on "
                 "corrected ones; both are scored against corrected held-out labels (and, "
                 "for reference, the published ones). Seeds "
                 f"{', '.join(map(str, labels['seeds']))}.\n\n"
                 "| recipe | training labels | CV CER, upright | CV CER, inverted | mean | "
                 "CV CER, upright, published labels |\n|---|---|---|---|---|---|\n")
        for name, row in labels["rows"].items():
            kind = ("corrected" if RECIPES[name].get("correct_train_labels")
                    else "as published")
            text += (f"| {name} | {kind} | {_cer_cells(row)} | "
                     f"{100 * row['cer_published']:.2f} % |\n")
        text += f"\nStage 3 chooses **{labels['chosen']}** (lowest mean).\n"
    decoding = results.get("decoding", {})
    if decoding.get("chosen"):
        text += ("\n## Stage 4: decoding\n\nThe same models of "
                 f"{decoding['recipe']} read their held-out crops greedily (best path) and by "
                 "prefix beam search (width 10), scored against corrected held-out labels as "
                 f"in stage 3. Seeds {', '.join(map(str, decoding['seeds']))}.\n\n"
                 "| decoding | CV CER, upright | CV CER, inverted | mean |\n|---|---|---|---|\n")
        for name, row in decoding["rows"].items():
            text += f"| {name} | {_cer_cells(row)} |\n"
        text += f"\nStage 4 chooses **{decoding['chosen']}** decoding (lowest mean).\n"
    reading = results.get("polarity_reading", {})
    if reading.get("chosen"):
        text += ("\n## Stage 5: polarity at reading\n\nThe same models, decoded as stage 4 "
                 "chose, read each held-out crop as given, or as given and inverted keeping "
                 "the read of the higher CTC log-probability, scored as in stage 3. Seeds "
                 f"{', '.join(map(str, reading['seeds']))}.\n\n"
                 "| reading | CV CER, upright | CV CER, inverted | mean |\n|---|---|---|---|\n")
        for name, row in reading["rows"].items():
            text += f"| {name} | {_cer_cells(row)} |\n"
        text += (f"\nStage 5 chooses **{reading['chosen']}** (lowest mean; a tie keeps the "
                 "crop as given).\n")
    return text + (f"\nThe benchmark's recipe: **{results['chosen']}**. The test photos of "
                   "`benchmarks/splits/plates_eu.json` were not read.\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plates", type=Path, default=DEFAULT_PLATES)
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "transfer_recipe")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    split = plate_split(args.plates)
    parts = folds(split["train"], args.folds)
    fold_folders = {False: [], True: []}
    for f, held_out in enumerate(parts):
        training = sorted(p for g, part in enumerate(parts) if g != f for p in part)
        for correct in (False, True):
            fold_folders[correct].append(
                materialise(args.plates, {"train": training, "test": held_out},
                            args.work / f"fold{f}{'-clean' if correct else ''}",
                            correct_train=correct))
    recipes = {}
    for name in args.recipes:
        folders = fold_folders[bool(RECIPES[name].get("correct_train_labels"))]
        cells = [cell(args, name, f, seed, folders[f])
                 for seed in args.seeds for f in range(args.folds)]
        truths = [t for c in cells for t in c["truths"]]
        reads = [r for c in cells for r in c["reads"]]
        recipes[name] = {"settings": recipe_settings(name), "seeds": args.seeds, "cells": cells,
                         **scores(truths, reads),
                         "cer_cells": mean_std([c["cer"] for c in cells])}
        print(f"[recipe] {name}: CV CER {recipes[name]['cer']:.4f}", flush=True)
    # rows of earlier invocations (other recipes, or other seeds) are kept: one table
    earlier = args.results_dir / "transfer_recipe.json"
    if earlier.exists():
        recipes = {**json.loads(earlier.read_text()).get("recipes", {}), **recipes}
    stage_one = {n: r for n, r in recipes.items()
                 if n not in POLARITY_CANDIDATES + LABEL_CANDIDATES}
    # recipes are compared on the seeds every row has (rows with more seeds say so)
    common = common_seeds(stage_one.values())
    for row in stage_one.values():
        row["cer_common_seeds"] = pooled_cer(row, common)
    results = {"folds": args.folds, "fold_seed": FOLD_SEED,
               "train_photos": len(split["train"]), "fine_tune_from": FINE_TUNE_FROM,
               "recipes": recipes, "common_seeds": common,
               "chosen_upright": min(stage_one, key=lambda n: stage_one[n]["cer_common_seeds"]),
               "environment": environment()}
    results["chosen"] = results["chosen_upright"]
    results["polarity"] = polarity_stage(recipes)
    if results["polarity"].get("chosen"):
        results["chosen"] = results["polarity"]["chosen"]
    results["labels"] = label_stage(recipes, results["chosen"])
    if results["labels"].get("chosen"):
        results["chosen"] = results["labels"]["chosen"]
    results["decoding"] = decoding_stage(recipes, results["chosen"])
    results["polarity_reading"] = polarity_reading_stage(recipes, results["chosen"],
                                                         results["decoding"].get("chosen"))
    write_json("transfer_recipe", results, args.results_dir)
    write_text("transfer_recipe.md", markdown(results), args.results_dir)
    print(markdown(results))


if __name__ == "__main__":
    main()
