r"""Clinical-knowledge cross-attention model on the default synthetic cohort.

Train on fold 0, select on its validation patients, test once:
  python launch.py --config configs/crossattn.py

Tiny smoke run (seconds on a laptop CPU; used by the tests):
  python launch.py --config configs/crossattn.py:smoke --workdir /tmp/smoke

Your own clips (see README "Bring your own data"):
  python launch.py --config configs/crossattn.py \
    --config.data.source=files --config.data.manual_dir=/path/to/folder
"""

from __future__ import annotations

import dataclasses

import ml_collections

from asd_jax.data.synthetic import CohortParams

# The 3-class task's diagnoses, each its own training class (data.train_classes): LCS_HipOA joins
# three walks that look nothing alike (stooped and upright LCS, HipOA's limp).
DIAGNOSES = "ASD:ASD,DHS:DHS,LCS:LCS,HipOA:HipOA,normal:-"


def get_data_config() -> ml_collections.ConfigDict:
    """Dataset, splits, windows, augmentation and sampling; shared by every model config."""
    data = ml_collections.ConfigDict()
    data.source = "synthetic"  # 'synthetic' (built-in cohort) or 'files' (data.manual_dir).
    data.manual_dir = ""  # A user folder: annotations.pkl, clips.csv, doctor*.csv.
    data.data_dir = ""  # Where TFDS keeps the built dataset; '' = TFDS default ($TFDS_DATA_DIR).
    data.classes = "3"  # Preset '2', '3', '4' or 'diagnosis:class,...'.
    # Finer classes to train on, each inside one class of data.classes, whose probabilities are
    # summed into it wherever the model is read (e.g. LCS and HipOA apart for the 3-class task's
    # LCS_HipOA: DIAGNOSES); '' = train on data.classes.
    data.train_classes = ""
    data.default_prior = "uniform"  # Prior for clips no rater annotated: 'uniform' or a region name.
    # A malformed clip of a user folder: 'raise' (stop with its error) or 'skip' (leave it out with a
    # warning; --mode=prepare counts the skips). A malformed file stops the run either way.
    data.on_error = "raise"

    # Generator parameters of the synthetic cohort, all of them (docs/synthetic_cohort.md), e.g.
    # --config.data.synthetic.effect_scale=0.5 for a harder cohort.
    data.synthetic = ml_collections.ConfigDict(dataclasses.asdict(CohortParams()))

    # Patient-grouped, diagnosis-stratified K-fold; validation patients come from the training side.
    data.num_folds = 5
    data.fold = 0
    data.val_fraction = 0.2
    data.split_seed = 0

    data.window = 64  # Frames per training/evaluation window.
    data.eval_stride = 32  # Hop between evaluation windows covering a clip.
    # A window reaching past a clip's end: 'edge' repeats its last frame, 'missing' pads with frames
    # where nothing was seen (for whole-clip windows, with a model that pools over present frames).
    data.pad = "edge"
    data.test_flip = False  # Also evaluate every window mirrored (left <-> right) and average the logits.
    data.fps = 30.0  # Clips at other frame rates are resampled to this.
    data.sampling = "over"  # Class balancing of training batches: 'over', 'under', 'none' or 'patient' (patients too).
    data.batch_size = 64  # Global batch, split over all devices of all processes.
    data.eval_batch_size = 128
    data.worker_count = 0  # grain worker processes (0 = in the main process).

    data.augment = ml_collections.ConfigDict()
    data.augment.flip_prob = 0.5
    data.augment.rotate_deg = 5.0
    data.augment.scale = 0.1
    data.augment.joint_dropout = 0.05
    data.augment.speed_jitter = 0.1
    # Share of training clips whose prior is replaced by the unannotated one (data.default_prior),
    # so the model also works on clips no clinician annotated; 0 = off. crossattn's default is 0.5
    # (get_config); models that read no prior keep 0 (`pose_only`).
    data.augment.prior_dropout = 0.0
    # Mixup across examples: each training clip blended with another (pose, prior, gait features and
    # labels) by a share drawn from Beta(mixup, mixup); 0 = off.
    data.augment.mixup = 0.0
    return data


def pose_only(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """For models that read no prior: no prior dropout, whose random draws would only reshuffle
    their augmentation."""
    config.data.augment.prior_dropout = 0.0
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """`arg`: None for the full run, 'smoke' for a seconds-long run on a tiny cohort."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = get_data_config()

    config.model = ml_collections.ConfigDict()
    config.model.name = "crossattn"
    config.model.dim = 64
    config.model.num_heads = 4
    config.model.depth = 2
    config.model.patch = 4  # Frames per temporal token.
    config.model.mlp_ratio = 2
    config.model.dropout = 0.1
    config.model.use_prior = True  # Clinical prior as a log-bias on the cross-attention logits.
    # Half the training clips see the unannotated prior: without it the model learns to lean on an
    # annotation that new clips may lack (docs/results.md: 0.655 vs 0.817 patient macro-F1 on
    # unannotated patients).
    config.data.augment.prior_dropout = 0.5
    config.model.cross_attention = True  # False: pose tokens self-attend only (ablation).
    config.model.align_weight = 0.1  # Weight of the attention-vs-prior alignment loss (0 = off).
    config.model.inputs = "joints"  # and any of bones, motion, angles (asd_jax/base/architecture.py)
    config.model.encoder = "patch"  # pose tokens: 'patch' (one linear map per patch) or 'conv' (temporal conv first)
    config.model.kernel = 9  # frames of the 'conv' encoder's temporal convolution

    config.optim = ml_collections.ConfigDict()
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 100
    config.optim.weight_decay = 0.05
    config.optim.grad_clip = 1.0
    config.optim.label_smoothing = 0.1
    config.optim.class_weights = ""  # '' (none), 'balanced', or comma-separated weights.
    config.optim.ema_decay = 0.0  # Moving average of the weights that are evaluated and kept (0 = off).

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 1500
    config.train.parallel = "shard_map"  # 'shard_map' or 'pmap'.
    config.train.compute_dtype = "float32"  # 'float32' or 'bfloat16' (params stay float32).
    config.train.log_every = 50
    config.train.eval_every = 250
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 2
    config.train.select_metric = "patient_macro_f1"  # On validation patients only; any headline number, or clip_neg_log_loss.
    # Checkpoints before this step are not selected: with ~11 validation patients an undertrained
    # model can score well by chance (seen on the dev cohort: best at step 50 of 600, worst on test).
    config.train.select_after = 0
    config.train.early_stop_patience = 0  # Evaluations without improvement before stopping (0 = off).
    config.train.distributed = False  # Join jax.distributed (multi-host); see README "Scaling out".
    config.train.coordinator_address = ""  # host:port of process 0; '' = auto-detect (TPU, SLURM).
    config.train.num_processes = 0  # 0 = auto-detect.
    config.train.process_id = -1  # -1 = auto-detect.

    config.report = ml_collections.ConfigDict()
    config.report.bootstrap_samples = 1000  # Patient-bootstrap draws behind every 95% CI.

    config.explain = ml_collections.ConfigDict()
    config.explain.clip_id = ""  # '' = the first `per_class` test clips of every class.
    config.explain.per_class = 2

    if arg == "smoke":
        config.data.synthetic.num_patients = 24
        config.data.synthetic.num_clips = 144
        config.data.num_folds = 3
        config.data.window = 32
        config.data.eval_stride = 32
        config.data.batch_size = 16
        config.data.eval_batch_size = 32
        config.model.dim = 16
        config.model.num_heads = 2
        config.model.depth = 1
        config.train.num_steps = 30
        config.train.log_every = 10
        config.train.eval_every = 15
        config.train.checkpoint_every = 15
        config.optim.warmup_steps = 5
        config.report.bootstrap_samples = 100  # the CIs' arithmetic, not their precision, is what a smoke run checks
    elif arg is not None:
        raise ValueError(f"unknown config variant {arg!r}; expected 'smoke' or nothing")
    return config
