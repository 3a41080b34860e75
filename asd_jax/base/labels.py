"""Diagnoses -> class labels, by preset or by a mapping given in the config.

A mapping is a string `"diagnosis:class,diagnosis:class,..."` so it can be set from the command
line (`--config.data.classes="A:a,B:b"`); classes are numbered in order of first appearance.
A diagnosis mapped to `-` is excluded from the task (its clips are left out); any diagnosis the
mapping does not name is an error, so a typo never silently drops data.
Presets copy the reference's 2-, 3- and 4-class tasks; they also know `LCS_HipOA`, the merged
diagnosis the reference's own `whole_annotations.pkl` labels carry (REFERENCE_LABELS).

A model may also be trained on finer classes than it reports (`data.train_classes`, e.g. LCS and
HipOA apart while the task reports LCS_HipOA): `class_groups` says which reported class each
training class belongs to, and the model's logits are merged into the reported classes
(`base.preprocess.merge_class_logits`) wherever they are read.

Patient-level results are per (patient, class) unit: a patient whose clips belong to several
classes (repeat visits, volunteers walking several gait disorders) is one unit per class, named
`patient|class`; every other patient is a unit named by the patient id alone (`patient_unit`).
"""

from __future__ import annotations

import dataclasses

from asd_jax.base.errors import ConfigError

RAW_DIAGNOSES: tuple[str, ...] = ("ASD", "DHS", "LCS", "HipOA", "LCS_HipOA", "normal")

PRESETS: dict[str, str] = {
    "2": "ASD:ASD,DHS:non-ASD,LCS:non-ASD,HipOA:non-ASD,LCS_HipOA:non-ASD,normal:non-ASD",
    "3": "ASD:ASD,DHS:DHS,LCS:LCS_HipOA,HipOA:LCS_HipOA,LCS_HipOA:LCS_HipOA,normal:-",
    "4": "ASD:ASD,DHS:DHS,LCS:LCS_HipOA,HipOA:LCS_HipOA,LCS_HipOA:LCS_HipOA,normal:normal",
}

# The diagnosis of each `label` index of the reference's whole_annotations.pkl (its
# prepare_skeleton_dataset/main_yolov8.py numbers ASD 0, DHS 1, LCS_HipOA 2, Normal 3).
REFERENCE_LABELS: tuple[str, ...] = ("ASD", "DHS", "LCS_HipOA", "normal")

UNIT_SEPARATOR = "|"  # reserved in patient ids: `P07|ASD` is patient P07's ASD clips


def patient_unit(patient_id: str, class_name: str, mixed: bool) -> str:
    """The patient-level unit of a clip: the patient id, or `patient|class` for a patient whose
    clips belong to several classes (`mixed`)."""
    return f"{patient_id}{UNIT_SEPARATOR}{class_name}" if mixed else str(patient_id)


def patient_of_unit(unit: str) -> str:
    """The patient a patient-level unit belongs to."""
    return str(unit).split(UNIT_SEPARATOR, 1)[0]


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Which diagnoses take part and which class each one belongs to."""

    class_names: tuple[str, ...]
    diagnosis_to_label: dict[str, int]
    excluded: frozenset[str] = frozenset()
    field: str = "data.classes"  # the config field it came from, named in its errors

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def includes(self, diagnosis: str, *, where: str = "") -> bool:
        """Whether clips of this diagnosis take part; unknown diagnoses are an error."""
        if diagnosis in self.excluded:
            return False
        self.label(diagnosis, where=where)
        return True

    def label(self, diagnosis: str, *, where: str = "") -> int:
        """Class index of a diagnosis; unknown diagnoses are an error naming where they came from."""
        try:
            return self.diagnosis_to_label[diagnosis]
        except KeyError:
            known = ", ".join(sorted(self.diagnosis_to_label) + [f"{d} (excluded)" for d in sorted(self.excluded)])
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}diagnosis {diagnosis!r} is not in the class mapping (known: {known}); "
                f"set --config.{self.field} to a preset (2, 3, 4) or 'diagnosis:class,...'"
            ) from None


def parse_label_map(spec: str, field: str = "data.classes") -> LabelMap:
    """Builds a LabelMap from a preset name ('2', '3', '4') or a 'diagnosis:class,...' string."""
    spec = PRESETS.get(str(spec).strip(), str(spec))
    class_names: list[str] = []
    mapping: dict[str, int] = {}
    excluded: set[str] = set()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        diagnosis, sep, class_name = (s.strip() for s in item.partition(":"))
        if not sep or not diagnosis or not class_name:
            raise ConfigError(f"{field}: bad class mapping entry {item!r} in {spec!r}: expected 'diagnosis:class' or a preset (2, 3, 4)")
        if diagnosis in mapping or diagnosis in excluded:
            raise ConfigError(f"{field}: diagnosis {diagnosis!r} is mapped twice in {spec!r}")
        if class_name == "-":
            excluded.add(diagnosis)
            continue
        if class_name not in class_names:
            class_names.append(class_name)
        mapping[diagnosis] = class_names.index(class_name)
    if len(class_names) < 2:
        raise ConfigError(f"class mapping {spec!r} needs at least two classes")
    return LabelMap(tuple(class_names), mapping, frozenset(excluded), field)


def class_groups(classes: str, train_classes: str = "") -> tuple[int, ...]:
    """The reported class (of `classes`) of each training class of `train_classes`; () when
    `train_classes` is empty and the model trains on the reported classes themselves.

    Every diagnosis `train_classes` includes must take part in `classes`, and each training class
    must lie inside one reported class, so merging its probability is well defined."""
    if not str(train_classes).strip():
        return ()
    reported, training = parse_label_map(classes), parse_label_map(train_classes, "data.train_classes")
    dropped = sorted(set(reported.diagnosis_to_label) & training.excluded)
    if dropped:
        raise ConfigError(f"data.train_classes leaves out {', '.join(map(repr, dropped))}, which data.classes={classes!r} reports")
    groups: dict[int, int] = {}
    for diagnosis, label in training.diagnosis_to_label.items():
        if diagnosis not in reported.diagnosis_to_label:
            raise ConfigError(
                f"data.train_classes trains on {diagnosis!r}, which data.classes={classes!r} does not report; "
                "every training diagnosis needs a reported class"
            )
        group = reported.diagnosis_to_label[diagnosis]
        if groups.setdefault(label, group) != group:
            raise ConfigError(
                f"data.train_classes: class {training.class_names[label]!r} joins diagnoses of two reported classes "
                f"({reported.class_names[groups[label]]!r} and {reported.class_names[group]!r}); a training class must lie inside one"
            )
    missing = sorted(set(range(reported.num_classes)) - set(groups.values()))
    if missing:
        names = ", ".join(repr(reported.class_names[c]) for c in missing)
        raise ConfigError(f"data.train_classes has no class inside reported class {names}; the model could never predict it")
    return tuple(groups[label] for label in range(training.num_classes))


def task_groups(data) -> tuple[int, ...]:
    """`class_groups` of a data config; one without `train_classes` trains on the reported classes."""
    return class_groups(data.classes, data.get("train_classes", ""))


def model_outputs(data, num_classes: int) -> int:
    """How many logits the model of a task with `num_classes` reported classes has: one per
    training class."""
    return len(task_groups(data)) or num_classes
