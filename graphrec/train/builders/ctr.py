"""The click-through-rate models' builders: each constructs its model over a CTR schema
(:class:`~graphrec.models.ctr.CTRSchema`), with optional graph-enriched item IDs.

The declared hyper-parameters are those ``graphrec train MODEL --task ctr`` offers; any
other constructor argument passes through from Python (``**more``), e.g.
``build_ctr_model("gmmf", data, {"hidden": (256, 128)})``. Options with
``target="train"`` (GMMF's GAN schedule) configure the fit loop and are not passed to
the constructor.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from graphrec.errors import ConfigError
from graphrec.models.ctr import DIN, FM, GMMF, LR, MARN, CTRSchema, DeepFM, YouTubeNet
from graphrec.models.ctr.marn import ADVERSARIAL, FUSIONS, SEQUENCES
from graphrec.train.registry import Option, register_model

__all__: list[str] = []


def _mods(value: Optional[str]) -> Optional[list[str]]:
    """``image,text`` -> ``["image", "text"]`` (None: every modality the data has); an
    empty or repeated name is a one-line error (:func:`graphrec.graphs.build.parse_modalities`)."""
    from graphrec.graphs.build import parse_modalities

    mods = parse_modalities(None if value is None else str(value))
    return None if mods is None else list(mods)


Dim = Annotated[int, Option("--dim", help="Item ID embedding size (papers: 32).", min=1)]
#: FM's and DeepFM's k: every field's embedding (ID and side fields; DeepFM's modality projections)
FieldDim = Annotated[int, Option("--dim", help="Embedding size k of every field (ID and side fields; papers: 32).", min=1)]
ModalityDim = Annotated[int, Option(help="Projection size of each content modality (0: raw features).", min=0)]
#: LR's and FM's user fields: off by default, as in both papers (item ID fields only)
UserFields = Annotated[bool, Option(
    "--user-fields", help="Also use the user ID and user side fields (not in the papers: item ID fields only).")]
Modalities = Annotated[
    Optional[list],
    Option(help="Content modalities used, e.g. image,text [all].", cli_type=Optional[str], to_value=_mods),
]


@register_model(
    "lr", task="ctr", title="LR", paper="McMahan et al., KDD 2013",
    summary="logistic regression on the candidate item's ID fields",
    example="graphrec train lr --data ../shared/data/ml100k --task ctr --epochs 30",
)
def build_lr(schema: CTRSchema, user_fields: UserFields = False, **more: Any) -> LR:
    """One weight per item and item side-field value (GMMF, MARN section 4.2); with
    ``--user-fields`` also per user and user side-field value."""
    return LR(schema, user_fields=user_fields, **more)


@register_model(
    "fm", task="ctr", title="FM", paper="Rendle, ICDM 2010",
    summary="factorization machine on the candidate item's ID fields",
    example="graphrec train fm --data ../shared/data/ml100k --task ctr --item-graph knn",
)
def build_fm(schema: CTRSchema, dim: FieldDim = 32, user_fields: UserFields = False, **more: Any) -> FM:
    """Pairwise interactions of the item's field embeddings (GMMF, MARN section 4.2);
    with ``--user-fields`` also of the user's."""
    return FM(schema, dim=dim, user_fields=user_fields, **more)


@register_model(
    "deepfm", task="ctr", title="DeepFM", paper="Guo et al., IJCAI 2017",
    summary="FM plus an MLP, content modalities as dense fields",
    example="graphrec train deepfm --data ../shared/data/amazon-scientific --task ctr",
)
def build_deepfm(schema: CTRSchema, dim: FieldDim = 32, modalities: Modalities = None, **more: Any) -> DeepFM:
    """FM's field embeddings shared with an MLP over all fields; each content modality is
    one more field, projected to the field size dim (there is no modality_dim)."""
    return DeepFM(schema, dim=dim, modalities=modalities, **more)


@register_model(
    "youtubenet", task="ctr", title="YouTubeNet", paper="Covington et al., RecSys 2016",
    summary="mean-pooled history plus an MLP",
    example="graphrec train youtubenet --data ../shared/data/amazon-scientific --task ctr --modality-dim 128",
)
def build_youtubenet(
    schema: CTRSchema, id_dim: Dim = 32, modality_dim: ModalityDim = 32, modalities: Modalities = None, **more: Any
) -> YouTubeNet:
    """The user is the mean of the history's item encodings."""
    return YouTubeNet(schema, id_dim=id_dim, modality_dim=modality_dim, modalities=modalities, **more)


@register_model(
    "din", task="ctr", title="DIN", paper="Zhou et al., KDD 2018",
    summary="candidate attention over the history",
    example="graphrec train din --data ../shared/data/amazon-scientific --task ctr --item-graph both",
)
def build_din(
    schema: CTRSchema, id_dim: Dim = 32, modality_dim: ModalityDim = 32, modalities: Modalities = None, **more: Any
) -> DIN:
    """The user is the history pooled by an activation unit conditioned on the candidate."""
    return DIN(schema, id_dim=id_dim, modality_dim=modality_dim, modalities=modalities, **more)


@register_model(
    "gmmf", task="ctr", title="GMMF", paper="Xiao et al., ACM MM 2022",
    summary="difference-set network plus modal-interest network",
    example="graphrec train gmmf --data ../shared/data/amazon-scientific --task ctr --gan-start-epoch 2 --item-graph both",
)
def build_gmmf(
    schema: CTRSchema,
    id_dim: Dim = 32,
    modalities: Modalities = None,
    recon_weight: Annotated[float, Option(help="Weight of the reconstruction loss (eq. 14).", min=0.0)] = 1.0,
    use_autoencoder: Annotated[bool, Option("--no-autoencoder", invert=True, help="Ablation: original features, no AE.")] = True,
    use_cgan: Annotated[bool, Option("--no-cgan", invert=True, help="Ablation: no CGAN + auto-difference.")] = True,
    use_min: Annotated[bool, Option("--no-min", invert=True, help="Ablation: mean pooling, no user gates (no MIN).")] = True,
    eq12_head: Annotated[bool, Option(
        "--eq12-head/--figure2-head",
        help="The prediction as eq. 12 prints it: one linear layer over the pooled history and the user. Default: "
             "Figure 2's 'all features merged into the downstream network' (the candidate's representations join; "
             "MLP [128, 64]).")] = False,
    gan_start_epoch: Annotated[
        int, Option(help="K of Algorithm 1: the GAN trains in epochs > K.", min=0, target="train")
    ] = 1,
    gan_lr: Annotated[
        float, Option(help="Learning rate of generator and discriminator (paper: 1e-5).", min=0.0, min_open=True, target="train")
    ] = 1e-5,
    **more: Any,
) -> GMMF:
    """Auto-encoders, a CGAN conditioned on the item ID and auto-difference per modality,
    then per-modality attention pooling with user gates. ``gan_start_epoch`` and
    ``gan_lr`` configure the fit loop (Algorithm 1), not the model. ``eq12_head``: the
    constructor's ``candidate_in_head=False, hidden=()`` (eq. 12 read literally)."""
    if eq12_head:
        given = [k for k in ("candidate_in_head", "hidden") if k in more]
        if given:
            raise ConfigError(f"eq12_head sets {' and '.join(given)} (eq. 12's head: no candidate, one linear "
                              f"layer): give eq12_head or {', '.join(given)}, not both")
        more.update(candidate_in_head=False, hidden=())
    return GMMF(schema, id_dim=id_dim, modalities=modalities, recon_weight=recon_weight,
                use_autoencoder=use_autoencoder, use_cgan=use_cgan, use_min=use_min, **more)


@register_model(
    "marn", task="ctr", title="MARN", paper="Li et al., WWW 2020",
    summary="MAF plus double-discriminator adversarial network plus APGRU",
    example="graphrec train marn --data ../shared/data/ml100k --task ctr --adversarial ddma",
)
def build_marn(
    schema: CTRSchema,
    id_dim: Dim = 32,
    modalities: Annotated[
        Optional[list],
        Option(help="Modalities: id and/or content names, e.g. id,image,text [all].", cli_type=Optional[str], to_value=_mods),
    ] = None,
    fusion: Annotated[str, Option(help="maf (attention) or concat (ablation).", choices=FUSIONS)] = "maf",
    adversarial: Annotated[str, Option(help="ddma, adv (one-to-one) or none.", choices=ADVERSARIAL)] = "ddma",
    sequence: Annotated[str, Option(help="apgru or gru (ablation).", choices=SEQUENCES)] = "apgru",
    adv_weight: Annotated[float, Option(help="lambda_0 of the adversarial terms.", min=0.0)] = 0.1,
    **more: Any,
) -> MARN:
    """Modality-specific and -invariant parts of every modality, fused by attention, and an
    attentional property GRU over the history. The representation size (the modality
    embeddings and the fused item vector) is --dim, the item ID size (id_dim); from
    Python, ``dim=`` sets it apart."""
    more.setdefault("dim", id_dim)
    return MARN(schema, id_dim=id_dim, modalities=modalities, fusion=fusion, adversarial=adversarial,
                sequence=sequence, adv_weight=adv_weight, **more)


