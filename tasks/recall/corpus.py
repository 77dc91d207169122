"""Builds the shipped embedded web corpus and the labelled held-out set (offline, deterministic).

    python -m tasks.recall.corpus            # rewrites tasks/recall/data/{web_pages,heldout}.jsonl.gz

What it is, honestly: a small web-LIKE corpus, not crawled pages. Code-related pages are real text
from the installed Python distributions: their README/long descriptions (PyPI metadata), cut into
page-sized chunks and placed under plausible code URLs (github.com/.../blob/..., *.readthedocs.io,
dev.to), plus Q&A pages wrapping real function source from the standard library, and conceptual
programming questions with no code lines (stackoverflow.com/questions). Non-code pages are prose
generated from templates with topic word banks (cooking, gardening, travel, sport, health, history,
finance, local news) on made-up domains, stackoverflow.com user profiles (non-code pages inside a
code domain, for the exclude patterns) and medium.com, a mixed domain.

Both files also hold real text of this machine (`tasks.recall.real_text`): code-related Python
language reference, standard-library docstrings (prose about an API), manual pages and release
notes; not code-related licence texts (legal prose full of "software" and "source code"); and, as
hard negatives, generated prose whose words are programming homonyms (python the snake, a string
quartet, a class at school). The held-out set uses the other half of every source (other
distributions, standard-library modules, reference topics, man pages, NEWS files and licences, and
another random stream), so no page text is shared with the web corpus. The man pages live on
domains (manpages.debian.org, linux.die.net) that no default include pattern annotates, so the loop
recalls them only through the classifier: the held-out F1 shows what URL annotation adds. The
generator's output depends on what is installed, which is why the files are shipped rather than
rebuilt at run time.
"""

from __future__ import annotations

import ast
import gzip
import importlib.metadata as md
import inspect
import json
import random
import re
import sys
import warnings
from pathlib import Path

from tasks.recall import real_text

DATA = Path(__file__).parent / "data"
WEB_PAGES = DATA / "web_pages.jsonl.gz"
HELDOUT = DATA / "heldout.jsonl.gz"

TOPICS: dict[str, dict[str, list[str]]] = {
    "cooking": {
        "nouns": "soup bread sauce oven garlic onion butter flour recipe dinner pasta rice chicken salad spoon pan "
                 "tomato basil lemon pepper dough crust broth stew kitchen dessert honey cinnamon".split(),
        "verbs": "simmer bake stir chop roast season whisk fold serve taste marinate knead".split(),
        "adjs": "crispy tender golden fragrant rich creamy spicy fresh hearty savory".split(),
    },
    "gardening": {
        "nouns": "garden soil seeds roses tomatoes compost mulch hedge lawn orchard blossom roots shade trellis "
                 "greenhouse bulbs tulips weeds watering can pruning shears beds".split(),
        "verbs": "plant prune water harvest sow transplant fertilize weed dig grow".split(),
        "adjs": "lush green sunny shady fertile hardy fragrant blooming dry seasonal".split(),
    },
    "travel": {
        "nouns": "village harbor museum cathedral train station hostel beach island mountain valley market ferry "
                 "passport suitcase guidebook bridge square festival coastline cafe".split(),
        "verbs": "visit explore wander hike book pack cross discover sail climb".split(),
        "adjs": "quiet crowded ancient scenic remote charming colorful breathtaking windy historic".split(),
    },
    "sport": {
        "nouns": "match goal striker coach season league referee stadium fans trophy penalty defender keeper "
                 "tournament captain injury transfer pitch derby championship".split(),
        "verbs": "score defend win lose tackle sign train celebrate equalize qualify".split(),
        "adjs": "dramatic decisive late brilliant disappointing unbeaten young experienced loud tense".split(),
    },
    "health": {
        "nouns": "sleep exercise diet heart muscles stress vitamins doctor walk breakfast hydration posture "
                 "immune system blood pressure routine yoga meditation".split(),
        "verbs": "stretch rest breathe recover relax improve reduce strengthen balance monitor".split(),
        "adjs": "healthy gentle regular balanced restful active moderate calm daily mindful".split(),
    },
    "history": {
        "nouns": "empire kingdom treaty war monarch castle revolution parliament century merchants pilgrims "
                 "manuscript chronicle dynasty battle colony harbor cathedral scholars".split(),
        "verbs": "conquer rule negotiate rebel trade crown chronicle besiege found abolish".split(),
        "adjs": "medieval ancient powerful forgotten bitter prosperous royal bloody famous distant".split(),
    },
    "finance": {
        "nouns": "savings budget mortgage interest pension loan credit card income expenses retirement "
                 "insurance inflation salary rent taxes deposit bank account".split(),
        "verbs": "save borrow invest spend repay afford compare plan reduce earn".split(),
        "adjs": "monthly affordable risky stable fixed variable generous tight household annual".split(),
    },
    "news": {
        "nouns": "council mayor residents road works library school festival police weather storm bus route "
                 "hospital election volunteers park bridge shop owners community".split(),
        "verbs": "announce approve close reopen protest vote celebrate warn repair gather".split(),
        "adjs": "local new annual heavy temporary controversial busy popular delayed public".split(),
    },
}

HOMONYMS: dict[str, dict[str, list[str]]] = {
    "wildlife": {
        "nouns": "python cobra viper mouse spider web bug beetle shell turtle crab swan crane heron moth "
                 "worm nest burrow branch root tree".split(),
        "verbs": "hatch crawl hunt nest shed molt burrow climb migrate feed".split(),
        "adjs": "venomous shy nocturnal tiny striped rare native invasive sleepy curious".split(),
    },
    "island": {
        "nouns": "java sumatra bali coffee ruby pearl jade emerald harbour volcano plantation beans market "
                 "ferry temple gem shell".split(),
        "verbs": "roast brew grind sail trade polish dive explore harvest visit".split(),
        "adjs": "volcanic tropical dark aromatic precious green humid ancient busy sunny".split(),
    },
    "music": {
        "nouns": "string quartet key scale note bar chord score rest composer orchestra bow loop track "
                 "record album tempo".split(),
        "verbs": "compose rehearse tune perform record conduct arrange practise improvise repeat".split(),
        "adjs": "minor major slow lively haunting solo acoustic classical loud gentle".split(),
    },
    "school": {
        "nouns": "class library lesson test exam assignment homework teacher module grade report book "
                 "term timetable project".split(),
        "verbs": "study revise teach borrow submit mark pass fail attend read".split(),
        "adjs": "difficult weekly final quiet crowded new strict patient summer optional".split(),
    },
    "crafts": {
        "nouns": "thread needle loop pattern stitch yarn cotton wool knot frame quilt button pin token "
                 "cookie jar".split(),
        "verbs": "knit sew weave tie bake stitch fold trim dye wrap".split(),
        "adjs": "woollen soft colourful handmade tight loose simple intricate warm tidy".split(),
    },
}
"""Prose whose words are programming homonyms (python the snake, java the island, a string quartet):
hard negatives for a classifier that keys on vocabulary."""

HOMONYM_DOMAINS = {"wildlife": "wildlife-journal.org", "island": "islandcoffee.net", "music": "musicschoolnews.com",
                   "school": "parentsandschools.net", "crafts": "knittingcircle.org"}

PROSE_DOMAINS = {
    "cooking": "recipesathome.net", "gardening": "gardenweekly.com", "travel": "travelnotes.org",
    "sport": "footballtalk.net", "health": "healthyliving.org", "history": "historymatters.net",
    "finance": "moneysense-blog.com", "news": "citynews-daily.com",
}

SENTENCES = [
    "The {adj} {noun} was the first thing we noticed when we arrived.",
    "Many readers asked how to {verb} the {noun} without spoiling the {noun2}.",
    "In our experience it is better to {verb} slowly and let the {noun} do the work.",
    "Nobody expected the {noun} to become so {adj} after only a few weeks.",
    "My grandmother always said that a {adj} {noun} needs patience more than anything else.",
    "We decided to {verb} the {noun} early in the morning, before the {noun2} got busy.",
    "The {noun2} next to the {noun} looked {adj} in the afternoon light.",
    "If you {verb} the {noun} too often, the {noun2} will suffer, so take it easy.",
    "Last weekend we tried to {verb} again, and the result was surprisingly {adj}.",
    "There is a long tradition here of people who {verb} the {noun} together every spring.",
    "Experts disagree about whether a {adj} {noun} is worth the extra effort.",
    "By the end of the day the {noun} felt {adj} and the {noun2} was finally ready.",
    "Ask anyone in town and they will tell you where to find the best {noun}.",
    "It took us three attempts to {verb} the {noun}, but we learned a lot on the way.",
    "The {adj} weather made it hard to {verb}, yet the {noun2} stayed remarkably calm.",
]

TITLES = ["{Adj} {noun} and other stories", "How we learned to {verb} the {noun}", "Notes on a {adj} {noun}",
          "Ten things about the {noun}", "Why the {noun} matters more than you think", "A {adj} week of {noun}"]

CONCEPT_QUESTIONS = [
    "Why is my {lang} {thing} slower than the equivalent {thing} in {lang2}? I profiled the program and most of the "
    "time goes into {op}. Is this expected behaviour of the {runtime}, or am I missing a compiler flag?",
    "What is the difference between a {thing} and a {thing2} in {lang}? The documentation says both {op}, "
    "but I get different results when the {runtime} runs them concurrently.",
    "Is it safe to share a {thing} between threads in {lang}? I read that the {runtime} does not guarantee "
    "ordering when you {op}, and I would like to understand the memory model before refactoring.",
    "How should I structure unit tests for a {thing} that depends on a {thing2}? Mocking the {thing2} feels wrong "
    "because the {runtime} behaves differently in production when we {op}.",
    "When does the {lang} {runtime} decide to {op}? The behaviour changed after upgrading the package manager "
    "and our continuous integration build now fails on the {thing2} step.",
]
LANGS = "Python Rust Go Java JavaScript TypeScript C++ Kotlin Haskell Ruby".split()
THINGS = ("iterator,hash map,async function,closure,generic struct,dataframe,regular expression,"
          "database cursor,thread pool,lambda,linked list,decorator,interface,enum,buffer").split(",")
OPS = ("allocate memory,garbage collect,serialize objects,resolve imports,compile templates,copy slices,"
       "evaluate lazily,acquire the lock,inline the call,box the value").split(",")
RUNTIMES = "interpreter,virtual machine,compiler,event loop,scheduler,borrow checker,type checker".split(",")

QA_INTROS = [
    "I wrote the following function but it returns the wrong value for some inputs:",
    "Here is the code I am using; the call raises an exception when the argument is empty:",
    "Can someone explain what this snippet does? I found it in the standard library:",
    "The following implementation works, but is there a more idiomatic way to write it?",
]
QA_ANSWERS = [
    "The problem is the early return: the loop exits before all items are processed. Move the return after the loop.",
    "You are mutating the argument in place. Copy it first, or return a new object, and the tests will pass.",
    "This is the documented behaviour; pass the optional keyword argument to change it, as shown above.",
    "Use a generator expression instead of building the intermediate list; it is faster and uses less memory.",
]

NAMES = "alice bob carol dmitri elena farid grace hiro ines jonas kemal lucia marta nadia oscar priya".split()
CITIES = "Lisbon Oslo Toronto Nairobi Lyon Krakow Austin Osaka Porto Dublin Bergen Leeds".split()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def prose_page(rng: random.Random, topic: str) -> tuple[str, str]:
    """(title, text) of a generated prose page on `topic` (a TOPICS or HOMONYMS key)."""
    bank = TOPICS[topic] if topic in TOPICS else HOMONYMS[topic]

    def fill(template: str) -> str:
        adj = rng.choice(bank["adjs"])
        return template.format(adj=adj, Adj=adj.capitalize(), noun=rng.choice(bank["nouns"]),
                               noun2=rng.choice(bank["nouns"]), verb=rng.choice(bank["verbs"]))

    title = fill(rng.choice(TITLES))
    paragraphs = [" ".join(fill(rng.choice(SENTENCES)) for _ in range(rng.randint(3, 6)))
                  for _ in range(rng.randint(2, 5))]
    return title, title + "\n\n" + "\n\n".join(paragraphs)


def concept_question(rng: random.Random) -> tuple[str, str]:
    lang, lang2 = rng.sample(LANGS, 2)
    thing, thing2 = rng.sample(THINGS, 2)
    fill = dict(lang=lang, lang2=lang2, thing=thing, thing2=thing2, op=rng.choice(OPS), runtime=rng.choice(RUNTIMES))
    title = f"{lang}: {thing} vs {thing2}"
    body = " ".join(rng.choice(CONCEPT_QUESTIONS).format(**fill) for _ in range(2))
    return title, f"{title}\n\n{body}\n\nAsked by {rng.choice(NAMES)}. {rng.randint(0, 40)} answers."


def stdlib_functions(module_names: list[str]) -> list[str]:
    """Source of small top-level functions of standard-library modules (5-30 lines)."""
    out = []
    for name in module_names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = __import__(name, fromlist=["_"])
            source = inspect.getsource(module)
        except (ImportError, OSError, TypeError):
            continue
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and 5 <= (node.end_lineno - node.lineno) <= 30:
                out.append(ast.get_source_segment(source, node))
    return out


def qa_page(rng: random.Random, snippet: str) -> tuple[str, str]:
    name = re.search(r"def (\w+)", snippet).group(1)
    title = f"Why does {name}() behave like this?"
    text = (f"{title}\n\n{rng.choice(QA_INTROS)}\n\n```python\n{snippet}\n```\n\n"
            f"Answer: {rng.choice(QA_ANSWERS)}")
    return title, text


def profile_page(rng: random.Random, user_id: int) -> str:
    name = rng.choice(NAMES).capitalize()
    return (f"{name}\nMember for {rng.randint(1, 14)} years, last seen this week. {rng.choice(CITIES)}.\n"
            f"Reputation {rng.randint(1, 90000)}. {rng.randint(0, 300)} answers, {rng.randint(0, 80)} questions. "
            f"Top badges: {rng.randint(1, 50)} gold, {rng.randint(1, 200)} silver. Profile views {rng.randint(10, 9000)}.")


def description_chunks(
    dists: list[md.Distribution], min_chars: int = 400, max_chars: int = 2500, per_dist: int = 5
) -> list[tuple[str, str]]:
    """(distribution name, chunk) pairs cut from long descriptions at paragraph boundaries."""
    out = []
    for dist in dists:
        text = dist.metadata.get_payload() or dist.metadata["Description"] or ""
        chunk, num = "", 0
        for para in re.split(r"\n\s*\n", text):
            chunk = f"{chunk}\n\n{para}" if chunk else para
            if len(chunk) >= min_chars and num < per_dist:
                out.append((dist.metadata["Name"], chunk[:max_chars]))
                chunk, num = "", num + 1
    return out


def installed_distributions() -> list[md.Distribution]:
    seen, dists = set(), []
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower()
        text = dist.metadata.get_payload() or dist.metadata["Description"] or ""
        if name and name not in seen and len(text) > 1500:
            seen.add(name)
            dists.append(dist)
    return sorted(dists, key=lambda d: d.metadata["Name"].lower())


def _code_page(rng: random.Random, pkg: str, chunk: str, i: int) -> tuple[str, str]:
    slug = _slug(pkg)
    kind = rng.random()
    if kind < 0.4:
        return f"https://github.com/{slug}/{slug}/blob/main/docs/page-{i}.md", chunk
    if kind < 0.8:
        return f"https://{slug}.readthedocs.io/en/latest/section-{i}.html", chunk
    return f"https://dev.to/{rng.choice(NAMES)}/{slug}-tips-{i}", chunk


def build_pages(rng: random.Random, dists: list[md.Distribution], modules: list[str], scale: int) -> list[dict]:
    """Labelled pages: {url, text, label (1 code-related / 0 not), family}."""
    pages = []
    for i, (pkg, chunk) in enumerate(description_chunks(dists)):
        url, text = _code_page(rng, pkg, chunk, i)
        pages.append({"url": url, "text": text, "label": 1, "family": "package_docs"})
    for i, snippet in enumerate(stdlib_functions(modules)[:scale]):
        title, text = qa_page(rng, snippet)
        pages.append({"url": f"https://stackoverflow.com/questions/{rng.randint(10**6, 10**8)}/{_slug(title)}",
                      "text": text, "label": 1, "family": "qa_code"})
    for _ in range(scale // 4):
        title, text = concept_question(rng)
        pages.append({"url": f"https://stackoverflow.com/questions/{rng.randint(10**6, 10**8)}/{_slug(title)}",
                      "text": text, "label": 1, "family": "qa_concept"})
    for _ in range(scale // 5):
        uid = rng.randint(1000, 10**7)
        pages.append({"url": f"https://stackoverflow.com/users/{uid}/{rng.choice(NAMES)}",
                      "text": profile_page(rng, uid), "label": 0, "family": "profile"})
    for topic, domain in PROSE_DOMAINS.items():
        for _ in range(scale // 4):
            title, text = prose_page(rng, topic)
            pages.append({"url": f"https://www.{domain}/{rng.randint(2015, 2025)}/{_slug(title)}",
                          "text": text, "label": 0, "family": f"prose_{topic}"})
    for _ in range(scale // 3):
        title, text = prose_page(rng, rng.choice(list(TOPICS)))
        pages.append({"url": f"https://medium.com/@{rng.choice(NAMES)}/{_slug(title)}-{rng.randint(100, 999)}",
                      "text": text, "label": 0, "family": "prose_medium"})
    rng.shuffle(pages)
    return pages


def real_pages(rng: random.Random, part: int, modules: list[str], scale: int) -> list[dict]:
    """Labelled pages of real text (`tasks.recall.real_text`, half `part`), `scale` pages per family at most,
    plus homonym prose (generated) as hard negatives."""
    families = [
        ("python_reference", 1, real_text.python_reference(part),
         lambda name, k: f"https://docs.python.org/3/reference/{_slug(name)}.html#p{k}"),
        ("api_docstring", 1, real_text.docstrings(modules),
         lambda name, k: rng.choice([f"https://docs.python.org/3/library/{name.split('.')[0]}.html#{name}",
                                     f"https://devdocs.io/python~3.11/library/{name.split('.')[0]}#{name}"])),
        ("man_page", 1, real_text.man_pages(part, limit=scale),
         lambda name, k: rng.choice([f"https://manpages.debian.org/bookworm/{name}.1.en.html#p{k}",
                                     f"https://linux.die.net/man/1/{name}#p{k}"])),
        ("release_notes", 1, real_text.release_notes(part),
         lambda name, k: rng.choice([f"https://sources.debian.org/src/{name}/NEWS#p{k}",
                                     f"https://github.com/{_slug(name)}/{_slug(name)}/blob/main/NEWS#p{k}"])),
        ("licence", 0, real_text.licence_texts(part),
         lambda name, k: rng.choice([f"https://opensource.org/license/{_slug(name)}#p{k}",
                                     f"https://www.gnu.org/licenses/{_slug(name)}.html#p{k}",
                                     f"https://choosealicense.com/licenses/{_slug(name)}/#p{k}"])),
    ]
    pages = []
    for family, label, items, url in families:
        for k, (name, text) in enumerate(rng.sample(items, min(scale, len(items)))):
            pages.append({"url": url(name, k), "text": text, "label": label, "family": family})
    for topic, domain in HOMONYM_DOMAINS.items():
        for _ in range(scale // 4):
            title, text = prose_page(rng, topic)
            pages.append({"url": f"https://www.{domain}/{rng.randint(2015, 2025)}/{_slug(title)}",
                          "text": text, "label": 0, "family": f"homonym_{topic}"})
    rng.shuffle(pages)
    return pages


def stdlib_module_names() -> list[str]:
    skip = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3"}
    return sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in skip)


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def main() -> None:
    dists, modules = installed_distributions(), stdlib_module_names()
    web = build_pages(random.Random(1), dists[0::2][:60], modules[0::2][:60], scale=240)
    web += real_pages(random.Random(3), 0, modules[0::2], scale=80)
    heldout = build_pages(random.Random(2), dists[1::2][:25], modules[1::2][:40], scale=120)
    heldout += real_pages(random.Random(4), 1, modules[1::2], scale=60)
    write_jsonl_gz(WEB_PAGES, web)
    write_jsonl_gz(HELDOUT, heldout)
    for name, rows in (("web", web), ("heldout", heldout)):
        print(name, len(rows), "pages,", sum(r["label"] for r in rows), "code-related")


if __name__ == "__main__":
    main()
