"""Sentences for the cue model's training, drawn from templates, so that it meets thousands of them.

Why templates: what tells a finished question from a statement the speaker may go on after, or a
backchannel from a "wait", is in the words and the melody, and a few dozen fixed sentences teach a
network those sentences, not the cue. The vocabulary here is the project's own; the evaluation
banks (duplex/eval/banks.py) are never drawn from, and `check_disjoint` keeps it so.

Classes (`CLASSES`): a turn that asks for an answer (a question), a statement (which
may be the end of a turn or the first of several sentences), a fragment (a clause ended on a comma
or a conjunction: the speaker is mid-sentence), a backchannel, and a stop word or the first words
of an interruption.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("asks", "statement", "fragment", "backchannel", "stop")
ASKS, STATEMENT, FRAGMENT, BACKCHANNEL, STOP = range(len(CLASSES))

PEOPLE = ["my brother", "our neighbour", "the plumber", "my daughter", "the teacher", "a friend of mine",
          "the manager", "my aunt", "the gardener", "our landlord", "the postman", "my colleague", "the vet",
          "the children", "my parents", "the mechanic", "the waiter", "my boss", "her husband", "the nurse",
          "my grandfather", "the builder", "our coach", "the baker", "my flatmate", "the twins"]
ACTIONS = [  # base, past, objects
    ("fix", "fixed", ["the fence", "the washing machine", "the leaking tap", "my old bike", "the gate"]),
    ("paint", "painted", ["the shed", "the spare bedroom", "the front door", "a portrait"]),
    ("sell", "sold", ["the old car", "the piano", "their caravan", "the sofa"]),
    ("find", "found", ["a wallet", "the spare key", "a lost puppy", "an old photo album"]),
    ("cook", "cooked", ["a curry", "the salmon", "pancakes", "a vegetable stew"]),
    ("visit", "visited", ["the zoo", "the castle", "the science fair", "the new gallery"]),
    ("order", "ordered", ["a new desk", "some paint", "the concert tickets", "a birthday cake"]),
    ("clean", "cleaned", ["the windows", "the garage", "the carpets", "the barbecue"]),
    ("borrow", "borrowed", ["my ladder", "a tent", "the van", "her sewing machine"]),
    ("move", "moved", ["the meeting", "the wardrobe", "the boxes", "the plants"]),
    ("book", "booked", ["a flight", "the village hall", "a table", "a driving lesson"]),
    ("lose", "lost", ["the receipt", "his glasses", "the remote control", "the charger"]),
    ("build", "built", ["a treehouse", "a garden wall", "a bookshelf", "a chicken coop"]),
    ("bring", "brought", ["a cake", "the wine", "some flowers", "the maps"]),
    ("watch", "watched", ["the match", "a documentary", "the fireworks", "the parade"]),
    ("check", "checked", ["the tyres", "the timetable", "the boiler", "the invoice"]),
    ("plant", "planted", ["an apple tree", "some lettuce", "the hedge", "a row of beans"]),
    ("call", "called", ["the insurance company", "the school", "a taxi", "the electrician"]),
]
WHEN = ["yesterday", "on Tuesday", "last night", "this morning", "after work", "at the weekend",
        "two days ago", "in the evening", "before lunch", "last month", "on the way home", "in March",
        "after the storm", "during the holidays", ""]
LATER = ["tomorrow", "on Friday", "next week", "tonight", "in the morning", "this afternoon", "on Sunday",
         "before the weekend", "after dinner", "later today", ""]
THINGS = ["the soup", "the hotel", "the bus", "the back room", "the film", "my phone", "the lawn", "the road",
          "the water", "the queue", "the ticket machine", "the lift", "the new bakery", "the car park",
          "the heating", "the printer at work", "the swimming lake", "the night market"]
STATES = ["too salty", "very noisy", "completely full", "much colder than usual", "quite expensive",
          "still broken", "really crowded", "almost empty", "closed for repairs", "surprisingly good",
          "a bit slow", "freshly painted", "out of order", "open until midnight"]
SUBJECTS = ["you", "I", "we", "they", "she", "he", "my brother", "the kids", "our team"]
AUX = ["can", "could", "should", "will", "would", "do", "did", "must", "shall"]
WH = ["what time", "where", "when", "why", "how", "how often", "which day", "how long", "who", "what"]
TOPICS = ["the history of the canal", "the recycling rules", "the weather on the coast", "a good film",
          "the best route to the stadium", "my calendar for tomorrow", "the train strike",
          "the rules of cricket", "a quick dessert", "the news in sport", "the opening times of the pool"]
PLACES = ["a cheap garage near the station", "a vet that is open on Sundays", "a quiet place to study",
          "a shop that sells garden chairs", "a bakery with gluten free bread", "a cinema in the centre"]
CONJ = ["when", "if", "because", "since", "after", "before", "although", "once", "as soon as", "while",
        "now that", "even though", "unless", "until"]
DISCOURSE = ["well, the thing is,", "so what I mean is,", "you know,", "on the other hand,", "to be honest,",
             "the reason I ask is,", "as I was saying,", "what I wanted to say is,", "anyway,", "I mean,",
             "so, um,", "and then,", "but the problem is,", "in any case,", "the funny thing is,"]
TAILS = ["and", "but", "so", "because", "and then", "or", "which", "with the", "and also the", "but the"]

BACKCHANNELS = ["mm-hmm", "uh-huh", "yeah", "yes", "right", "okay", "I see", "sure", "oh", "ah",
                "mhm", "yep", "got it", "oh really", "uh huh", "alright", "mm", "ok", "yeah yeah", "I know",
                "true", "exactly", "oh okay", "ah right", "of course", "fine"]
STOPS = ["wait", "no", "stop", "hold on", "hang on", "sorry", "excuse me", "no no", "wait wait", "actually",
         "but", "hey", "listen", "one second", "not that", "um, wait", "no, stop", "just a moment", "pardon",
         "what", "hold it", "wait a second", "no, no, no", "stop please", "sorry, but", "hang on a sec",
         "no wait", "um, no", "not now", "hey, listen", "enough", "cancel", "quiet please", "nope"]


NOUNS = ["bus", "shop", "train", "museum", "bakery", "doctor", "plumber", "ferry", "garage", "pharmacy", "hotel",
         "restaurant", "bridge", "school", "library", "market", "cinema", "dentist", "post office", "playground"]
PLACE_PHRASES = ["near the station", "in the old town", "by the river", "on the high street", "around here",
                 "across the park", "at the airport", "in the next village", "behind the church", "downtown"]
OPENS = ["opens", "closes", "stops", "goes", "leaves", "arrives", "runs", "starts"]
WISHES = ["if I want it done by Friday", "when it starts to rain", "so that the kids can come too",
          "before the guests arrive", "if the shops are closed", "while I am away", "when the power goes out"]
FACTS = ["there is a new cafe {place}", "it rained for three days {when}", "the lights went out {when}",
         "there was a long queue at the {noun}", "it is much quieter {place} now", "the {noun} was closed {when}",
         "we walked all the way to the {noun}", "everybody was talking about the storm"]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


class Sentences:
    """Seeded draws of one class's text."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, items: list[str]) -> str:
        return str(items[int(self.rng.integers(len(items)))])

    def action(self) -> tuple[str, str, str]:
        base, past, objects = ACTIONS[int(self.rng.integers(len(ACTIONS)))]
        return base, past, self.pick(objects)

    def clause(self) -> str:
        """A past-tense clause: `my aunt sold the piano on Tuesday`."""
        _, past, obj = self.action()
        return _join(self.pick(PEOPLE), past, obj, self.pick(WHEN))

    def asks(self) -> str:
        kind = int(self.rng.integers(10))
        base, _, obj = self.action()
        noun, place = self.pick(NOUNS), self.pick(PLACE_PHRASES)
        if kind == 5:  # a wh-word as the subject: no auxiliary after it
            return _cap(_join(self.pick(["which", "what"]), noun, self.pick(OPENS), self.pick(LATER) or "first",
                              place if self.rng.random() < 0.5 else "")) + "?"
        if kind == 6:
            if self.rng.random() < 0.5:
                return _cap(_join("is there a", noun, place)) + "?"
            return _cap(_join("are there any good", noun + "s", place)) + "?"
        if kind == 7:  # a long question that ends in a clause
            return _cap(_join(self.pick(WH[:7]), self.pick(["should", "can", "do"]), self.pick(SUBJECTS), base, obj,
                              self.pick(WISHES))) + "?"
        if kind == 8:
            return _cap(_join(self.pick(["can you", "could you", "would you"]),
                              self.pick(["find me", "suggest", "recommend", "explain", "tell me about"]),
                              self.pick(TOPICS + PLACES))) + "?"
        if kind == 9:
            return _cap(_join(self.pick(["what is", "where is", "how far is", "who runs"]), "the", noun, place)) + "?"
        if kind == 0:
            return _cap(_join(self.pick(WH), self.pick(AUX), self.pick(SUBJECTS), base, obj, self.pick(LATER))) + "?"
        if kind == 1:
            return _cap(_join(self.pick(AUX), self.pick(SUBJECTS), base, obj, self.pick(LATER))) + "?"
        if kind == 2:
            verb = "was" if self.rng.random() < 0.5 else "is"
            return _cap(_join(verb, self.pick(THINGS), self.pick(STATES), self.pick(LATER))) + "?"
        if kind == 3:
            lead = self.pick(["do you know", "can you tell me", "could you check", "any idea", "do you remember"])
            return _cap(_join(lead, self.pick(WH), self.pick(PEOPLE), "will", base, obj)) + "?"
        if kind == 4:
            return _cap(_join("what about", self.pick(TOPICS))) + "?" if self.rng.random() < 0.3 else \
                _cap(_join("why", "is", self.pick(THINGS), self.pick(STATES))) + "?"
    def statement(self) -> str:
        kind = int(self.rng.integers(7))
        if kind >= 4:  # "there is...", "it rained...", and long ones that end in a clause
            fact = self.pick(FACTS).format(place=self.pick(PLACE_PHRASES), when=self.pick(WHEN), noun=self.pick(NOUNS))
            if kind == 6:
                fact = _join(self.clause(), self.pick(["because", "when", "after", "so"]), fact)
            return _cap(fact.strip()) + "."
        if kind == 0:
            return _cap(self.clause()) + "."
        if kind == 1:
            verb = "was" if self.rng.random() < 0.5 else "is"
            return _cap(_join(self.pick(THINGS), verb, self.pick(STATES), self.pick(WHEN))) + "."
        if kind == 2:
            return _cap(_join("I", self.pick(["think", "guess", "heard", "know", "noticed"]), self.clause())) + "."
        return _cap(_join(self.pick(["we", "I", "they"]), self.pick(["really enjoyed", "did not like", "talked about",
                                                                  "forgot about"]), self.pick(TOPICS))) + "."

    def fragment(self) -> str:
        kind = int(self.rng.integers(4))
        if kind == 0:
            return _cap(_join(self.pick(CONJ), self.clause())) + ","
        if kind == 1:
            return _cap(_join(self.clause(), self.pick(TAILS)))
        if kind == 2:
            return _cap(self.pick(DISCOURSE))
        _, past, obj = self.action()
        return _cap(_join(obj, "that", self.pick(PEOPLE), past, self.pick(WHEN))) + ","

    def backchannel(self) -> str:
        return self.pick(BACKCHANNELS)

    def stop(self) -> str:
        return self.pick(STOPS)

    def of(self, label: int) -> str:
        return getattr(self, CLASSES[label])()


def check_disjoint(texts: list[str]) -> list[str]:
    """The texts that also appear in an evaluation bank (should be none)."""
    from duplex.eval.heldout import BANKS

    taken = {t.lower().strip(" ,.?") for bank in BANKS.values() for t in
             (*bank.questions, *bank.barge_ins, *(p for f in bank.comma_fragments for p in f),
              *(p for f in bank.final_fragments for p in f), *(p for m in bank.monologues for p in m))}
    return [t for t in texts if t.lower().strip(" ,.?") in taken]
