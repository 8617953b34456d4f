"""Regenerate the exact Hydra ``_target_`` allowlist from the installed libraries.

Run with the libraries installed (torch, scikit-learn): prints the Python source of
``src/mltrust/scan/formats/_hydra_targets.py``. Only public classes that a training config
instantiates are listed, each under the public path configs use (``torch.optim.AdamW``), never a
module prefix: a prefix would admit test utilities and helpers that run processes
(``torch.testing._internal.common_utils.shell``, ``sklearn.utils._testing``...). Libraries that
are not installed here contribute the hand-reviewed entries in ``CURATED``.

    python scripts/hydra_targets_evidence.py > src/mltrust/scan/formats/_hydra_targets.py
"""

from __future__ import annotations

import importlib
import inspect
import sys

#: (public module, base classes) whose public subclasses of a base are listed.
GENERATED = [
    ("torch.nn", ("torch.nn.Module",)),
    ("torch.optim", ("torch.optim.Optimizer",)),
    ("torch.optim.lr_scheduler", ("torch.optim.lr_scheduler.LRScheduler",)),
    (
        "torch.utils.data",
        ("torch.utils.data.Dataset", "torch.utils.data.Sampler", "torch.utils.data.DataLoader"),
    ),
    ("torch.distributions", ("torch.distributions.Distribution",)),
]

#: Reviewed by hand: classes from libraries not installed where the list is generated.
CURATED = """
torchvision.models.resnet18 torchvision.models.resnet34 torchvision.models.resnet50
torchvision.models.resnet101 torchvision.models.vit_b_16 torchvision.models.efficientnet_b0
torchvision.transforms.Compose torchvision.transforms.ToTensor torchvision.transforms.Normalize
torchvision.transforms.Resize torchvision.transforms.CenterCrop torchvision.transforms.RandomCrop
torchvision.transforms.RandomResizedCrop torchvision.transforms.RandomHorizontalFlip
torchvision.transforms.ColorJitter torchvision.transforms.RandomRotation
torchvision.transforms.ConvertImageDtype torchvision.transforms.PILToTensor
torchvision.datasets.CIFAR10 torchvision.datasets.CIFAR100 torchvision.datasets.MNIST
torchvision.datasets.FashionMNIST torchvision.datasets.ImageFolder torchvision.datasets.ImageNet
torchaudio.transforms.MelSpectrogram torchaudio.transforms.MFCC torchaudio.transforms.Resample
torchmetrics.Accuracy torchmetrics.F1Score torchmetrics.Precision torchmetrics.Recall
torchmetrics.MeanSquaredError torchmetrics.MeanAbsoluteError torchmetrics.AUROC
torchmetrics.MetricCollection
pytorch_lightning.Trainer pytorch_lightning.callbacks.ModelCheckpoint
pytorch_lightning.callbacks.EarlyStopping pytorch_lightning.callbacks.LearningRateMonitor
pytorch_lightning.callbacks.RichProgressBar pytorch_lightning.callbacks.TQDMProgressBar
pytorch_lightning.loggers.TensorBoardLogger pytorch_lightning.loggers.WandbLogger
pytorch_lightning.loggers.CSVLogger
lightning.Trainer lightning.pytorch.Trainer lightning.pytorch.callbacks.ModelCheckpoint
lightning.pytorch.callbacks.EarlyStopping lightning.pytorch.callbacks.LearningRateMonitor
lightning.pytorch.loggers.TensorBoardLogger lightning.pytorch.loggers.CSVLogger
lightning.pytorch.loggers.WandbLogger
transformers.AutoModel transformers.AutoModel.from_pretrained transformers.AutoConfig
transformers.AutoConfig.from_pretrained transformers.AutoTokenizer
transformers.AutoTokenizer.from_pretrained transformers.AutoModelForCausalLM
transformers.AutoModelForCausalLM.from_pretrained transformers.AutoModelForSequenceClassification
transformers.AutoModelForSequenceClassification.from_pretrained
transformers.get_linear_schedule_with_warmup transformers.get_cosine_schedule_with_warmup
timm.create_model peft.LoraConfig peft.get_peft_model
nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
nemo.collections.asr.modules.SpectrogramAugmentation nemo.collections.asr.modules.ConvASREncoder
nemo.collections.asr.modules.ConvASRDecoder nemo.collections.asr.modules.ConformerEncoder
nemo.collections.asr.modules.RNNTDecoder nemo.collections.asr.modules.RNNTJoint
nemo.collections.asr.modules.ConvASRDecoderClassification
nemo.collections.asr.losses.CTCLoss nemo.collections.asr.metrics.WER
nemo.collections.common.tokenizers.SentencePieceTokenizer
nemo.collections.asr.data.audio_to_text.AudioToCharDataset
nemo.collections.asr.data.audio_to_text.AudioToBPEDataset
nemo.core.optim.lr_scheduler.CosineAnnealing nemo.core.optim.lr_scheduler.NoamAnnealing
nemo.core.optim.lr_scheduler.WarmupAnnealing nemo.core.optim.lr_scheduler.SquareRootAnnealing
nemo.core.optim.lr_scheduler.PolynomialDecayAnnealing nemo.core.optim.novograd.Novograd
omegaconf.DictConfig omegaconf.ListConfig
"""


def _generated() -> set[str]:
    out: set[str] = set()
    for module_name, base_paths in GENERATED:
        module = importlib.import_module(module_name)
        bases = []
        for path in base_paths:
            mod, _, cls = path.rpartition(".")
            bases.append(getattr(importlib.import_module(mod), cls))
        for name in getattr(module, "__all__", dir(module)):
            if name.startswith("_"):
                continue
            obj = getattr(module, name, None)
            if not inspect.isclass(obj) or not issubclass(obj, tuple(bases)):
                continue
            if "DataPipe" in name:
                continue
            if "test" in (obj.__module__ or ""):
                continue
            out.add(f"{module_name}.{name}")
    from sklearn.utils import all_estimators

    for name, cls in all_estimators():
        public = cls.__module__.split("._")[0]
        if getattr(importlib.import_module(public), name, None) is cls:
            out.add(f"{public}.{name}")
    for extra in (
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.compose.ColumnTransformer",
    ):
        out.add(extra)
    return out


def main() -> None:
    names = sorted(_generated() | set(CURATED.split()))
    lines = [
        '"""Exact Hydra/NeMo ``_target_`` allowlist (scripts/hydra_targets_evidence.py).',
        "",
        "Do not edit by hand: change the script (its CURATED list or GENERATED modules) and rerun.",
        '"""',
        "",
        "TARGETS: frozenset[str] = frozenset(",
        "    {",
    ]
    lines += [f'        "{n}",' for n in names]
    lines += ["    }", ")", ""]
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    main()
