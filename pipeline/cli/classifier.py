"""`medarchive classifier`: train the document-type model from the archive, and its status."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from pipeline.archive.audit import AuditLog
from pipeline.cli.common import actor, json_option, with_config
from pipeline.core.config import Config
from pipeline.identify import model_store
from pipeline.identify.training import labelled_set, train_and_store


@click.group(name="classifier")
def classifier_group():
    """The document-type model learned from titled and clerk-typed documents."""


def _figure_lines(figures: dict) -> list[str]:
    lines = [f"examples:   {figures['examples']} in {len(figures['per_type'])} types"]
    for doc_type, count in figures["per_type"].items():
        lines.append(f"  {doc_type:<18} {count:>6}   F1 {figures['f1_per_type'][doc_type]:.3f}")
    for doc_type, count in figures["left_out"].items():
        lines.append(f"  {doc_type:<18} {count:>6}   too few: left to the rules")
    lines.append(f"cross-validated: accuracy {figures['accuracy']:.3f}, macro-F1 {figures['macro_f1']:.3f}")
    for true, predicted, count in figures["confused"]:
        lines.append(f"  confused: {true} read as {predicted} ({count})")
    return lines


@classifier_group.command(name="train")
@json_option()
@with_config
def train(config: Config, as_json: bool):
    """Train on every filed document typed by a title, a barcode or a clerk; replaces the model."""
    figures = train_and_store(config).to_json()
    path = model_store.model_path(config)
    AuditLog.for_config(config).record("classifier.train", user=actor(), details={"examples": figures["examples"]})
    if as_json:
        click.echo(json.dumps({"model": str(path), "bytes": path.stat().st_size, "figures": figures}))
        return
    for line in _figure_lines(figures):
        click.echo(line)
    click.echo(
        f"model:      {path} ({path.stat().st_size / 1e6:.1f} MB, {figures['features']} features, "
        f"trained in {figures['seconds']:.1f} s)"
    )


def _age(created_at: str) -> str:
    seconds = (datetime.now(UTC) - datetime.fromisoformat(created_at)).total_seconds()
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds / 3600:.1f} hours"


@classifier_group.command(name="status")
@json_option()
@with_config
def status(config: Config, as_json: bool):
    """The model in use (age, size, training-set hash, figures) and the labelled set now."""
    path = model_store.model_path(config)
    labelled = labelled_set(config)
    AuditLog.for_config(config).record("classifier.status", user=actor(), details={"labelled": len(labelled.examples)})
    row: dict = {
        "model": str(path),
        "present": path.is_file(),
        "usable": False,
        "labelled_now": len(labelled.examples),
        "labelled_per_type": labelled.per_type,
        "min_examples": config.classification.min_examples,
    }
    if path.is_file():
        row["bytes"] = path.stat().st_size
        try:
            stored = model_store.read(path)
            row.update(
                usable=True,
                created_at=stored.header["created_at"],
                age=_age(stored.header["created_at"]),
                training_hash=stored.training_hash,
                sklearn=stored.header["sklearn"],
                changed_since=stored.training_hash != labelled.digest,
                figures=stored.header["figures"],
            )
        except model_store.ModelUnusable as exc:
            row["problem"] = str(exc)
    if as_json:
        click.echo(json.dumps(row))
        return
    _print_status(row, config)


def _print_status(row: dict, config: Config) -> None:
    if not row["present"]:
        click.echo(
            f"model:      none yet; the rules alone decide ({row['labelled_now']} labelled document(s), "
            f"a model needs {row['min_examples']}: `medarchive classifier train`)"
        )
        return
    if not row["usable"]:
        click.echo(
            f"model:      {row['model']} is ignored: {row['problem']}; the rules alone decide until it is retrained"
        )
        return
    click.echo(f"model:      {row['model']} ({row['bytes'] / 1e6:.1f} MB)")
    click.echo(f"trained:    {row['created_at']} ({row['age']} ago), scikit-learn {row['sklearn']}")
    click.echo(
        f"training:   set hash {row['training_hash'][:16]}"
        f"{'; the labelled set has changed since' if row['changed_since'] else ''} "
        f"({row['labelled_now']} labelled document(s) now)"
    )
    if config.classification.retrain_at:
        click.echo(
            f"retrain:    daily at {config.classification.retrain_at} by the daemon when the labelled set changed"
        )
    for line in _figure_lines(row["figures"]):
        click.echo(line)


COMMANDS: list[click.Command] = [classifier_group]
