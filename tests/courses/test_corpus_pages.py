"""An operator switches to Lens with a real vault: every page its courses name is served.

The app syncs `tests/content/corpus` (CONTENT_DIR) at start-up, as it would an
operator's folder. Each section must show words written into that section's own text,
excerpt or transcript, so content lost on the way fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.auth import sign_in
from tests.fixtures.users import make_user

CORPUS = Path(__file__).parents[1] / "content" / "corpus"
FUNDAMENTALS = "/course/agi-safety-fundamentals"
TASTER = "/course/alignment-101"

# Every module the courses name that can be served: for each section in order, words
# from that section alone (a chat-only section shows only its title).
SECTIONS: dict[str, list[tuple[str, ...]]] = {
    "welcome": [
        ("The lighthouse keeper does not count ships", "how clever systems go wrong"),
        ("Bring one question you would like the group to discuss.",),
    ],
    "goals-and-proxies": [
        ("A thermostat wants nothing", "We pick a number we can see and hope"),
        ("noticed that monetary targets", "Soviet nail factories", "walks into all of them."),
        ("learned to circle a small lagoon forever", "made moves at enormous coordinates"),
        ("The agent gets points for hitting targets along the course.", "spins there forever"),
    ],
    "specification-gaming": [
        ("We rarely can write down what we want.", "This module uses the first name."),
        ("keep working as long as any improvement is left.", "only as safe as the maximiser"),
    ],
    "reward-hacking-v1": [
        ("reads one passage of the article slowly", "can learn to close its eyes."),
        ("Bring one example of a reward that was satisfied without the wish behind it.",),
        ("Your own example",),
    ],
    "reading-group": [],  # no sections yet
    "next-steps": [
        ("the best way to keep up is to read one paper a week",),
        ("a property called polysemanticity", "the closest thing the field has to a microscope."),
    ],
    "mesa-optimisation": [
        ("it may have found a search procedure rather than a lookup table.",),
        ("is not yet a model that wants what we want.",),
        ("Two optimisers are at work", "That inner objective is called the mesa-objective."),
    ],
    "instrumental-goals": [
        ("Watch the opening of the talk.", "that sameness is what people mean by instrumental"),
        ("We come back to them in the next meeting.",),
    ],
    "power-seeking": [
        ("keep a greenhouse at the right temperature.",),
        ("carry the whole argument.", "Staying switched on helps."),
        ("These are called instrumental goals", "seeking power is the default"),
    ],
    "interpretability": [
        ("Weights and activations are harder to hide.", "attention heads lighting up"),
        ("Sparse dictionary methods can pull thousands of such features",),
    ],
}
COURSES = {
    FUNDAMENTALS: [
        "welcome",
        "goals-and-proxies",
        "specification-gaming",
        "reward-hacking-v1",
        "reading-group",
        "next-steps",
    ],
    TASTER: [
        "mesa-optimisation",
        "instrumental-goals",
        "power-seeking",
        "interpretability",
        "next-steps",
    ],
}
# Overview: each unit's heading and count line, and the modules it lists, as the course
# file names them (the unavailable one by its file name).
OVERVIEWS = {
    FUNDAMENTALS: [
        (
            "Before meeting 1: Introduction",
            "0 of 2 required modules completed",
            ["Welcome to the course", "Goals and proxies"],
        ),
        (
            "Before meeting 2: Proxies and gaming",
            "0 of 2 required modules completed",
            [
                "When the target is not the goal",
                "Reward hacking, the older module",
                "Optional reading group",
            ],
        ),
        (
            "Before meeting 3",
            "0 of 1 required modules completed (1 not available yet)",
            ["governance-basics"],
        ),
        ("After the last meeting", "0 of 1 required modules completed", ["Where to go from here"]),
    ],
    TASTER: [
        (
            "Before meeting 1",
            "0 of 2 required modules completed",
            ["Optimisers inside optimisers", "Useful for almost any goal"],
        ),
        (
            "Before meeting 2",
            "0 of 1 required modules completed",
            ["Power as a means", "Looking inside"],
        ),
        # `# Meeting: 2` written a second time stays meeting 2 (a warning for the author).
        ("Before meeting 2", "0 of 1 required modules completed", ["Where to go from here"]),
    ],
}
UNAVAILABLE_REASON = (
    "modules/governance-basics.md cannot be served: Unknown section `Quiz` "
    "(expected `# Page:`, `# Learning Outcome:` or `# Uncategorized:`) (line 18)"
)
LEFT_OUT = "Lenses/Reward hacking in practice.md cannot be served"


@pytest.fixture
async def client(client_factory):
    async with client_factory(CONTENT_DIR=str(CORPUS)) as client:
        yield client


def stepper_links(html: str) -> int:
    match = re.search(r'<nav class="stepper".*?</nav>', html, re.S)
    return match.group(0).count('href="?s=') if match else 0


def article(html: str) -> str:
    match = re.search(r'<article class="section.*?</article>', html, re.S)
    return match.group(0) if match else ""


def units(html: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for section in re.findall(r'<section class="card unit".*?</section>', html, re.S):
        heading = re.search(r"<h2[^>]*>(.*?)</h2>", section, re.S)
        count = re.search(r'<p class="muted small">(.*?)</p>', section, re.S)
        names = re.findall(
            r'<li class="module-entry[^"]*">\s*(?:<a [^>]*>|<span class="module-name">)(.*?)<',
            section,
        )
        assert heading and count, section
        found.append((heading.group(1).strip(), count.group(1).strip(), names))
    return found


@pytest.mark.parametrize("course", [FUNDAMENTALS, TASTER])
async def test_every_section_of_every_module_is_served(client, course: str) -> None:
    for slug in COURSES[course]:
        sections = SECTIONS[slug]
        for s, words in enumerate(sections or [()], start=1):
            page = await client.get(f"{course}/{slug}?s={s}")
            where = f"{course}/{slug}?s={s}"
            assert page.status_code == 200, where
            assert stepper_links(page.text) == len(sections), where
            shown = article(page.text) if sections else page.text
            for text in words or ("This module has no sections yet.",):
                assert text in shown, f"{where}: {text!r} is not on the page"


async def test_what_authors_wrote_for_themselves_is_not_on_the_page(client) -> None:
    welcome = (await client.get(f"{FUNDAMENTALS}/welcome?s=1")).text
    assert "<h2>Each week</h2>" in welcome and "<h2>What you need</h2>" in welcome
    assert "<h2>Why we meet in groups</h2>" in welcome  # a heading inside the text
    for hidden in ("short reflection", "Check with Sam", "intelligent", "TODO", "%%", "{++"):
        assert hidden not in welcome
    second = (await client.get(f"{FUNDAMENTALS}/welcome?s=2")).text
    assert "@@" not in second and "Priya" not in second
    assert '/content/assets/Lenses/images/cohort-timeline.png"' in second
    old = (await client.get(f"{FUNDAMENTALS}/reward-hacking-v1?s=1")).text
    assert "talks it through." in old and "{==" not in old and "suggested here" not in old
    assert "The uncomfortable lesson is that a reward is a description" in old


@pytest.mark.parametrize("course", [FUNDAMENTALS, TASTER])
async def test_the_overview_lists_every_module_the_course_names(client, course: str) -> None:
    page = await client.get(course)
    assert page.status_code == 200
    assert units(page.text) == OVERVIEWS[course]
    assert " of 0 " not in page.text
    unavailable = re.findall(r'<li class="module-entry unavailable">.*?</li>', page.text, re.S)
    if course == FUNDAMENTALS:
        assert len(unavailable) == 1
        assert "governance-basics" in unavailable[0] and ">unavailable<" in unavailable[0]
        assert "<a " not in unavailable[0]
        assert "/governance-basics" not in page.text
        assert (await client.get(f"{course}/governance-basics")).status_code == 404
    else:
        assert unavailable == []


async def test_a_module_no_course_lists_is_served_alone(client) -> None:
    first = await client.get("/module/extra-reading")
    assert first.status_code == 200
    assert "Facilitators share its link with anyone who asks" in article(first.text)
    second = await client.get("/module/extra-reading?s=2")
    assert "A system is corrigible if it lets its designers correct it" in article(second.text)
    assert (await client.get(f"{FUNDAMENTALS}/extra-reading")).status_code == 404
    # The module with a bad slug is not served; under the slug the editor copy shares,
    # the original is.
    assert (await client.get("/module/Week 3 Reading")).status_code == 404
    welcome = await client.get("/module/welcome?s=2")
    assert welcome.status_code == 200
    assert "Read the two short modules that follow" in article(welcome.text)
    assert "Read the two modules that follow before" not in welcome.text


async def test_an_old_slug_moves_permanently_to_the_new_one(client) -> None:
    old = await client.get(f"{FUNDAMENTALS}/orientation?s=2")
    assert old.status_code == 301
    assert old.headers["location"] == f"{FUNDAMENTALS}/welcome?s=2"
    alone = await client.get("/module/start-here")
    assert alone.status_code == 301
    assert alone.headers["location"] == "/module/welcome?s=1"


async def test_a_lens_is_served_alone_from_the_original_file(client) -> None:
    page = await client.get("/lens/e418a224-ade2-40df-872c-8475585c07be")
    assert page.status_code == 200
    assert "Read the opening of this essay, then skip ahead" in page.text
    assert "editing this copy" not in page.text
    assert "noticed that monetary targets" in page.text
    assert '/module/goals-and-proxies"' in page.text  # where to read it with the tutor
    assert (await client.get("/lens/f178fa31-be9d-4888-bae4-605aacffc888")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "articles/attachments/goodhart-curve.png",
        "articles/attachments/options.png",
        "Lenses/images/cohort-timeline.png",
        "Lenses/images/inner-outer.png",
    ],
)
async def test_embedded_images_are_served(client, path: str) -> None:
    response = await client.get(f"/content/assets/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == (CORPUS / path).read_bytes()
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "path",
    ["articles/attachments/unused-photo.png", ".obsidian/icon.png", "modules/drafts/sketch.png"],
)
async def test_images_nothing_embeds_are_not_served(client, path: str) -> None:
    assert (await client.get(f"/content/assets/{path}")).status_code == 404


async def test_the_article_image_is_on_the_page_that_shows_it(client) -> None:
    page = await client.get(f"{FUNDAMENTALS}/goals-and-proxies?s=2")
    assert 'src="/content/assets/articles/attachments/goodhart-curve.png"' in page.text
    lens = await client.get(f"{TASTER}/mesa-optimisation?s=3")
    assert '<img src="/content/assets/Lenses/images/inner-outer.png"' in lens.text
    assert 'width="300"' in lens.text


async def test_admins_see_why_and_visitors_do_not(client, db) -> None:
    overview = (await client.get(FUNDAMENTALS)).text
    module = (await client.get(f"{FUNDAMENTALS}/specification-gaming")).text
    for page in (overview, module):
        assert "Only admins see this" not in page and "only admins see this" not in page
        assert "cannot be served" not in page
    sign_in(client, await make_user(db, is_admin=True))
    overview = (await client.get(FUNDAMENTALS)).text
    assert "Only admins see this: " in overview
    reason = re.sub(r"&#3[49];", lambda m: {"&#34;": '"', "&#39;": "'"}[m.group(0)], overview)
    assert UNAVAILABLE_REASON in reason
    module = (await client.get(f"{FUNDAMENTALS}/specification-gaming")).text
    assert "Left out of this module (only admins see this)" in module
    assert LEFT_OUT in module and "a strong optimiser always wins." in module
    assert "line 18" in module


async def test_a_signed_in_reader_who_is_not_an_admin_sees_no_reasons(client, db) -> None:
    sign_in(client, await make_user(db))
    overview = (await client.get(FUNDAMENTALS)).text
    module = (await client.get(f"{FUNDAMENTALS}/specification-gaming")).text
    assert ">unavailable<" in overview
    for page in (overview, module):
        assert "cannot be served" not in page and "only admins see this" not in page.lower()


async def test_what_the_review_of_the_pages_asked_for(client) -> None:
    # A module on its own counts reading time too (its page sends no course).
    page = await client.get("/module/welcome")
    found = re.search(r'data-module="([^"]+)" data-content="([^"]+)" data-course=""', page.text)
    assert found is not None
    body = {"course": "", "module_key": found.group(1), "content_id": found.group(2)}
    beat = await client.post(
        "/api/progress/heartbeat", json=body, headers={"Origin": "http://lens.test"}
    )
    assert beat.json() == {"counted_seconds": 30, "saved_later": False}
    # A lens on its own has no module to count for: no data-module, so no heartbeats.
    lens = await client.get("/lens/e418a224-ade2-40df-872c-8475585c07be")
    assert "data-module=" not in lens.text
    # The discussion link, and a sized image with its size.
    assert 'href="https://discord.com/channels/111111111111111111/222222222222222222"' in page.text
    mesa = await client.get("/module/mesa-optimisation?s=3")
    assert re.search(
        r'<img src="/content/assets/Lenses/images/inner-outer\.png" width="300"', mesa.text
    )
    # HEAD on an image answers like GET, without the bytes.
    head = await client.head("/content/assets/Lenses/images/inner-outer.png")
    assert head.status_code == 200 and head.headers["content-type"] == "image/png"
