"""A varied English text source for synthetic speech, generated from small grammars.

Why generated: no text corpora may be downloaded here, and templated text alone is too narrow (the
model learns the templates). We mix several generators — everyday sentences, numbers and dates
spelled as spoken, spelled letters, device commands, names, and short domain phrases — and the real
training transcripts (AN4, speechocean762) so the character model sees open-vocabulary English.
"""

from __future__ import annotations

import random

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
ORDINALS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "twenty first",
    "twenty second",
    "twenty third",
    "twenty fourth",
    "twenty fifth",
    "twenty sixth",
    "twenty seventh",
    "twenty eighth",
    "twenty ninth",
    "thirtieth",
    "thirty first",
]
NAMES = [
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "nancy",
    "daniel",
    "lisa",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "paul",
    "ashley",
    "steven",
    "kimberly",
    "andrew",
    "emily",
    "kenneth",
    "donna",
    "joshua",
    "michelle",
    "wei",
    "li",
    "chen",
    "priya",
    "ahmed",
    "fatima",
    "carlos",
    "sofia",
    "olga",
    "yuki",
    "kwame",
    "amara",
    "liam",
    "noah",
    "emma",
    "olivia",
]
PLACES = [
    "london",
    "paris",
    "boston",
    "chicago",
    "seattle",
    "berlin",
    "tokyo",
    "beijing",
    "madrid",
    "the station",
    "the office",
    "the hospital",
    "the library",
    "the market",
    "the airport",
    "the park",
    "the school",
    "the river",
    "the city center",
    "the kitchen",
    "the garden",
]
NOUNS = [
    "book",
    "car",
    "phone",
    "window",
    "door",
    "table",
    "computer",
    "letter",
    "garden",
    "house",
    "train",
    "ticket",
    "meeting",
    "report",
    "coffee",
    "dinner",
    "picture",
    "river",
    "mountain",
    "bridge",
    "story",
    "song",
    "teacher",
    "doctor",
    "child",
    "friend",
    "market",
    "question",
    "answer",
    "problem",
    "plan",
    "money",
    "paper",
    "water",
    "weather",
    "music",
    "morning",
    "evening",
    "family",
    "company",
    "country",
    "world",
    "island",
    "forest",
    "engine",
    "bottle",
    "camera",
    "recording",
    "model",
    "transcript",
    "message",
    "package",
    "battery",
    "screen",
]
ADJECTIVES = [
    "small",
    "large",
    "old",
    "new",
    "quiet",
    "loud",
    "bright",
    "dark",
    "quick",
    "slow",
    "happy",
    "tired",
    "busy",
    "empty",
    "full",
    "warm",
    "cold",
    "heavy",
    "light",
    "strange",
    "beautiful",
    "simple",
    "difficult",
    "important",
    "careful",
    "green",
    "red",
    "blue",
    "yellow",
    "white",
    "black",
    "early",
    "late",
    "long",
    "short",
    "clean",
    "broken",
]
VERBS_PAST = [
    "opened",
    "closed",
    "found",
    "lost",
    "bought",
    "sold",
    "painted",
    "cleaned",
    "fixed",
    "moved",
    "watched",
    "carried",
    "wrote",
    "read",
    "built",
    "sent",
    "received",
    "checked",
    "saw",
    "heard",
    "visited",
    "followed",
    "remembered",
    "forgot",
    "described",
    "answered",
]
VERBS = [
    "open",
    "close",
    "find",
    "buy",
    "paint",
    "clean",
    "fix",
    "move",
    "watch",
    "carry",
    "write",
    "read",
    "build",
    "send",
    "check",
    "visit",
    "follow",
    "remember",
    "describe",
    "answer",
    "call",
    "play",
    "stop",
    "start",
    "record",
    "save",
    "delete",
    "share",
    "print",
    "bring",
]
ADVERBS = [
    "quickly",
    "slowly",
    "carefully",
    "quietly",
    "yesterday",
    "today",
    "tomorrow",
    "again",
    "later",
    "early",
    "already",
    "never",
    "always",
    "often",
    "sometimes",
    "together",
]
COMMANDS = [
    "turn on the lights",
    "turn off the radio",
    "set an alarm for",
    "call",
    "play some music",
    "stop the recording",
    "start a new note",
    "send a message to",
    "open the calendar",
    "what is the weather in",
    "navigate to",
    "remind me to",
    "cancel the meeting with",
    "increase the volume",
    "decrease the temperature",
    "lock the front door",
    "show me",
]
DOMAIN = [
    "the patient has a mild fever and a persistent cough",
    "please schedule a follow up appointment next week",
    "the invoice number is listed at the top of the page",
    "the server returned an error after the update",
    "take two tablets twice a day after meals",
    "the flight to boston has been delayed by forty minutes",
    "please upload the recording to the shared folder",
    "the quarterly report shows a strong increase in sales",
    "the device lost its network connection this morning",
    "check the blood pressure before the next dose",
    "the train to the airport leaves from platform nine",
    "my account number ends in four seven two",
    "the meeting has been moved to thursday afternoon",
    "the battery level is low please connect the charger",
    "the new model transcribes speech on the phone",
]


def number_words(n: int) -> str:
    """Spoken English for 0..999999 ("four hundred and twelve")."""
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))


def year_words(year: int) -> str:
    if 2000 <= year < 2010:
        return "two thousand" + ("" if year == 2000 else " and " + ONES[year - 2000])
    return (
        number_words(year // 100)
        + " "
        + (number_words(year % 100) if year % 100 >= 10 else "oh " + ONES[year % 100])
    )


class SentenceGenerator:
    """Draws sentences from a mix of generators and real transcripts."""

    def __init__(self, seed: int, real_texts: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.real_texts = real_texts or []

    def _c(self, items: list[str]) -> str:
        return self.rng.choice(items)

    def everyday(self) -> str:
        r = self.rng.random()
        if r < 0.25:
            return (
                f"{self._c(NAMES)} {self._c(VERBS_PAST)} the {self._c(ADJECTIVES)} "
                f"{self._c(NOUNS)} {self._c(ADVERBS)}"
            )
        if r < 0.5:
            return (
                f"the {self._c(NOUNS)} near {self._c(PLACES)} was "
                f"{self._c(ADJECTIVES)} and {self._c(ADJECTIVES)}"
            )
        if r < 0.75:
            return (
                f"could you {self._c(VERBS)} the {self._c(NOUNS)} before "
                f"{self._c(NAMES)} gets to {self._c(PLACES)}"
            )
        return (
            f"we {self._c(VERBS_PAST)} a {self._c(ADJECTIVES)} {self._c(NOUNS)} at "
            f"{self._c(PLACES)} and then {self._c(VERBS_PAST)} the {self._c(NOUNS)}"
        )

    def numbers(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return " ".join(ONES[self.rng.randrange(10)] for _ in range(self.rng.randint(3, 9)))
        if r < 0.6:
            return f"{number_words(self.rng.randrange(1, 20000))} {self._c(NOUNS)}s"
        if r < 0.8:
            return (
                f"{self._c(MONTHS)} {self._c(ORDINALS)} "
                f"{year_words(self.rng.randrange(1950, 2030))}"
            )
        return f"the price is {number_words(self.rng.randrange(1, 999))} dollars"

    def spelled(self) -> str:
        letters = "abcdefghijklmnopqrstuvwxyz"
        return " ".join(self.rng.choice(letters) for _ in range(self.rng.randint(2, 7)))

    def command(self) -> str:
        cmd = self._c(COMMANDS)
        if cmd.endswith(("to", "for", "with", "in", "call", "me")):
            tail = self._c(
                [
                    self._c(NAMES),
                    self._c(PLACES),
                    f"{number_words(self.rng.randrange(1, 12))} o'clock",
                ]
            )
            return f"{cmd} {tail}"
        return cmd

    def sentence(self) -> str:
        r = self.rng.random()
        if self.real_texts and r < 0.3:
            return self._c(self.real_texts)
        if r < 0.55:
            return self.everyday()
        if r < 0.7:
            return self.numbers()
        if r < 0.78:
            return self.spelled()
        if r < 0.9:
            return self.command()
        return self._c(DOMAIN)
