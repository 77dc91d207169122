"""Configuration of the `recall` stage (code-related web and text recall, spec §5)."""

from dataclasses import dataclass

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class RecallConfig:
    enabled: bool = True
    """false passes the input through with zero web rows (the ablation "web recall off")."""
    web_path: str | None = None
    """Web pages to recall from: a Parquet/JSONL(.gz) file or a folder of them, with `url`/`text` columns
    (also `WARC-Target-URI`/`content` and other CC WET / FineWeb names). null: the shipped embedded web
    corpus `tasks/recall/data/web_pages.jsonl.gz` (generated offline, see tasks/recall/corpus.py)."""
    seed_paths: tuple[str, ...] = ()
    """Extra labelled seeds (Parquet/JSONL with `text` and `label` in {1, 0} or {code, other}); added to the
    heuristic seeds of round 0."""
    heldout_path: str | None = None
    """Labelled held-out set scored by every round's classifier; null: the shipped
    `tasks/recall/data/heldout.jsonl.gz` (>= 500 documents); "" disables it."""
    rounds: int = 3
    """Seed -> train -> recall -> domains iterations (paper §5: three)."""
    threshold: float = 0.5
    """fastText probability of `code` above which a page is recalled. NOT FOUND in the paper; 0.5 as [R-NUGIE]."""
    domain_share: float = 0.1
    """A domain is code-related when more than this share of its pages were recalled (paper §5: 10%)."""
    min_domain_pages: int = 3
    """Domains with fewer pages are never marked (our default: one stray page must not mark a domain)."""
    include_patterns: tuple[str, ...] = (
        "%stackoverflow.com/questions%",
        "%stackexchange.com/questions%",
        "%github.com/%/blob/%",
        "%readthedocs.io/%",
        "%docs.python.org/%",
        "%cloud.tencent.com/developer/article%",
        "%segmentfault.com/q%",
        "%juejin.cn/post%",
    )
    """Code-related URL patterns (`%` is a wildcard, as Table 14) applied inside discovered code domains: a
    matching page is recalled, and one the classifier scored low becomes a positive seed of the next round."""
    exclude_patterns: tuple[str, ...] = (
        "%stackoverflow.com/users%",
        "%stackoverflow.com/tags%",
        "%github.com/%/stargazers%",
        "%/login%",
    )
    """URL patterns never recalled; matching pages become negative seeds of the next round (our choice)."""
    seed_url_patterns: bool = False
    """Round 0: also take pages matching an include pattern as positive seeds. Off by default so the
    patterns act as in the paper, only inside domains the classifier discovered (from round 0 on)."""
    max_repo_seeds: int = 10_000
    """Repository text files (Appendix C.2 names) taken as positive seeds at most, the first in input order: the
    driver's budget for them, whatever the corpus size (our default; the embedded corpus has 5)."""
    min_code_density: float = 0.15
    """Round-0 heuristic: a page whose share of code-looking lines reaches this is a positive seed
    (our default; the paper annotated its seeds with AutoMathText / by hand)."""
    max_negative_density: float = 0.0
    """Round-0 heuristic: pages at or below this code-line share (and matching no include pattern) are
    candidate negative seeds. NOT FOUND (negative-sample source): unlabeled-looking prose pages."""
    negatives_per_positive: float = 1.5
    """Negative seeds sampled per positive seed (NOT FOUND in the paper; our default)."""
    repo_text_seeds: bool = True
    """Repository text files whose name matches the Appendix C.2 heuristic (readme, notes, todo,
    description, cmakelists, requirement) are positive seeds too."""
    max_seed_chars: int = 4000
    """Characters of a document used for training and scoring (long pages are cut)."""
    vocab_size: int = 4000
    """BPE vocabulary trained on each round's seeds before fastText (spec §5: BPE first). Our default."""
    epoch: int = 15
    """fastText epochs (NOT FOUND; our default for small seed sets)."""
    lr: float = 0.5
    """fastText learning rate (NOT FOUND; our default)."""
    word_ngrams: int = 2
    """fastText word n-grams over BPE tokens (NOT FOUND; our default)."""
    dim: int = 64
    """fastText vector size (NOT FOUND; small for the embedded run)."""
    bucket: int = 200_000
    """fastText hash buckets for word n-grams (fastText's 2M default allocates 2M x dim floats; our default
    keeps models small and training fast)."""
    heldout_share: float = 0.1
    """Share of each round's seeds held out to report the classifier's precision/recall."""
    web_share: float = 0.1
    """Recalled web text is at most this share of the output bytes (paper §4: ~10% of the corpus)."""
    score_repo_text: bool = True
    """Score repository text files with the final classifier and fill `code_related_text` (Appendix C.2)."""
    checkpoint_dir: str = "checkpoints/recall"
    """Persistent work folder; finished rounds are reused when inputs and params hash the same."""
    seed: int = 0
    """Seed for seed sampling, hold-out split and fastText."""

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"recall.rounds must be >= 1, got {self.rounds}")
        for name in ("threshold", "domain_share", "min_code_density", "max_negative_density", "heldout_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"recall.{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.web_share < 1.0:
            raise ConfigError(f"recall.web_share must be in [0, 1), got {self.web_share}")
        if self.vocab_size < 100:
            raise ConfigError(f"recall.vocab_size must be >= 100, got {self.vocab_size}")
        if self.max_repo_seeds < 0:
            raise ConfigError(f"recall.max_repo_seeds must be >= 0, got {self.max_repo_seeds}")
        if self.negatives_per_positive <= 0:
            raise ConfigError(f"recall.negatives_per_positive must be positive, got {self.negatives_per_positive}")
