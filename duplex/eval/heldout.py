"""The held-out conversations: Full-Duplex-Bench's four task shapes plus the hard cases.

Shapes (docs/metrics.md): `pause_handling` (one mid-sentence pause, 0.5-1.0 s, after a
comma-ended fragment), `smooth_turn_taking` (a plain question), `user_interruption` (a question,
then a barge-in 0.5-1.5 s into the reply), `backchannel` (two backchannels and a cough over the
reply, one after another with 0.4-1.2 s between them, with the speaker's own echo at -20 dB),
`hesitant_barge_in` ("wait" / "no" / "stop" / "hold on" pieces 0.2-0.6 s apart before the main
utterance), `long_pause` (two 0.3-1.5 s pauses after fragments that end like a sentence) and
`monologue` (three statements with 0.45 s gaps, the benchmark's backchannel task). The sentences
are this module's own, used nowhere else in the project, in two banks (`Sentences`): bank `b`, the
default, was written after tiny-fd v2 was tuned. Every draw comes from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.format import SAMPLE_RATE
from duplex.eval.tts import Speaker, Tts, cough, silence
from duplex.paths import written_whole
from duplex.scenario.spec import After, Check, ClipSpec, EchoSpec, Expectation, NoiseSpec, Role, Scenario, Trigger

SHAPES = ("pause_handling", "smooth_turn_taking", "user_interruption", "backchannel",
          "hesitant_barge_in", "long_pause", "monologue")

@dataclass(frozen=True, slots=True)
class Sentences:
    """One bank of the held-out set's sentences (used nowhere else in the project)."""

    questions: tuple[str, ...]
    comma_fragments: tuple[tuple[str, str], ...]  # the first part ends on a comma, held pitch
    final_fragments: tuple[tuple[str, str, str], ...]  # three parts, each of which could end a turn
    barge_ins: tuple[str, ...]
    monologues: tuple[tuple[str, str, str], ...]  # three statements, each sounding final


HESITATIONS = ("wait", "no", "stop", "hold on")
BACKCHANNELS = ("mm-hmm", "yeah", "right", "okay", "uh-huh", "I see")

# Bank "a" was looked at while tiny-fd v2 was tuned (its failures chose a training stage), so its
# figures are not held-out ones any more; bank "b" was written after, and nobody has tuned on it.
BANKS = {
    "a": Sentences(
        questions=(
            "Which bus goes to the old harbour from the cathedral?",
            "How long should I boil an egg if I want the yolk soft?",
            "Can you find me a quiet hotel near the botanical gardens?",
            "What is a good name for a grey kitten with white paws?",
            "Do you know when the swimming pool closes on Thursdays?",
            "How do I say thank you very much in Portuguese?",
            "Could you explain why leaves turn red in the autumn?",
            "Where would you go for a weekend of hiking in the spring?",
        ),
        comma_fragments=(
            ("If the weather stays like this,", "should we move the picnic indoors?"),
            ("When my cousin arrives on Friday,", "can you help me plan a dinner for six?"),
            ("Before I forget about the tickets,", "what time does the concert start?"),
            ("The blue jacket I bought last week,", "can I still return it without a receipt?"),
        ),
        final_fragments=(
            ("I spoke to the landlord yesterday.", "He says the boiler is fine.",
             "But the flat is still cold at night."),
            ("We visited the lighthouse on Monday.", "The stairs were very steep.",
             "What else is there to see nearby?"),
            ("My neighbour grows tomatoes.", "She gave me a whole basket.", "What can I make with them?"),
            ("The printer stopped working.", "I changed the cartridge already.", "What should I try next?"),
        ),
        barge_ins=(
            "That is not what I asked you about, I meant the night train.",
            "Sorry, I was asking about the other one, the smaller one.",
            "Let me change the question, what about next Tuesday instead?",
            "I already know that part, tell me about the price.",
        ),
        monologues=(
            ("Last summer we drove along the coast.", "Every evening we stopped in a different village.",
             "The best one had a tiny bakery by the church."),
            ("I have started learning the cello.", "My teacher is patient but very strict.",
             "We practise scales for half of every lesson."),
            ("Our team moved to a new office in March.", "It has big windows and a roof terrace.",
             "Unfortunately the coffee machine is always broken."),
        ),
    ),
    "b": Sentences(
        questions=(
            "Is there a ferry to the island before eight in the morning?",
            "What should I pack for three days of rain in the mountains?",
            "Can you suggest a present for a friend who likes astronomy?",
            "How many cups of flour go into a loaf of brown bread?",
            "Which museum in town has the dinosaur skeletons?",
            "Why does my bicycle chain keep slipping on the hills?",
            "When is the best time of year to see the northern lights?",
            "Could you read me the opening hours of the post office?",
        ),
        comma_fragments=(
            ("Once the painters have finished the hallway,", "how long before we can hang the pictures?"),
            ("Since the library moved across the river,", "which tram should I take to get there?"),
            ("If my parcel does not arrive by Monday,", "who do I call about a refund?"),
            ("Now that the evenings are getting darker,", "what time should the porch light come on?"),
        ),
        final_fragments=(
            ("The dentist called this morning.", "My appointment moved to Friday.",
             "Is there a bus that gets me there by nine?"),
            ("I finished the crossword at lunch.", "Except for one clue about rivers.",
             "Do you know a river with four letters in Italy?"),
            ("Our kettle broke last night.", "The new one arrives next week.", "How else can I boil water?"),
            ("I planted some tulip bulbs.", "The squirrels dug up half of them.",
             "How do I keep the squirrels away?"),
        ),
        barge_ins=(
            "No, not the ferry, I was asking about the bridge toll.",
            "Hang on, I meant the weekend after this one.",
            "Actually forget that, how much does the cheaper one cost?",
            "You misunderstood me, I need it for four people, not two.",
        ),
        monologues=(
            ("My grandmother turned ninety on Sunday.", "The whole family came to her garden.",
             "She still beat everyone at cards after dinner."),
            ("The river flooded the lower road again.", "The council closed it for the whole week.",
             "Everyone has to drive round through the hills now."),
            ("I repaired an old radio this weekend.", "It needed two new valves and a speaker.",
             "Now it plays the evening news like it did in the fifties."),
        ),
    ),
    # Banks "c" and "d" were written in round 23, after every rule of duplex/cue was made: c to measure
    # how far those rules, made while bank b's failures were read, carry to sentences nobody has
    # read; d held back, for a claim once c's failures have been read in turn.
    "c": Sentences(
        questions=(
            "Where can I park near the train station for a whole day?",
            "Are the swimming lessons for children on Saturday mornings?",
            "What is the quickest way to defrost a chicken safely?",
            "Does this recipe still work without any eggs?",
            "Who wrote the song they played at the end of the film?",
            "Would it be cheaper to take the train or to drive?",
            "How far is the nearest pharmacy that is open tonight?",
            "Have you got any tips for sleeping on a long flight?",
        ),
        comma_fragments=(
            ("When the snow starts to melt next month,", "will the mountain pass open again?"),
            ("Because my laptop keeps overheating,", "should I buy a cooling stand for it?"),
            ("After we move into the new house,", "how do I change my address for the post?"),
            ("While my sister is visiting in June,", "where could we go for a day by the sea?"),
        ),
        final_fragments=(
            ("My daughter starts school next week.", "She needs a lunch box and a raincoat.",
             "Where can I buy both in one shop?"),
            ("The heating came on at midnight.", "Nobody touched the thermostat.", "Why would it do that on its own?"),
            ("I bought a second-hand piano.", "Two of the keys make no sound.", "Can a tuner fix that at home?"),
            ("We are hosting a quiz on Friday.", "I have forty questions so far.", "How many rounds should there be?"),
        ),
        barge_ins=(
            "No, I meant the one near the hospital, not the station.",
            "Sorry, that is the wrong date, it is the twelfth.",
            "Wait, can you make it vegetarian instead?",
            "That is too far, find me something within walking distance.",
        ),
        monologues=(
            ("We adopted a dog from the shelter last month.", "He was shy for the first few days.",
             "Now he follows my son everywhere around the house."),
            ("The bakery on our street closed in October.", "A bicycle shop opened in its place.",
             "It already has a queue every Saturday morning."),
            ("My brother ran his first marathon in the spring.", "He trained for almost a whole year.",
             "He finished just under four hours."),
        ),
    ),
    "d": Sentences(
        questions=(
            "Is the castle open to visitors on bank holidays?",
            "What time does the last boat leave the harbour tonight?",
            "Can you remind me how to reset the router?",
            "Which plants grow well on a shady balcony?",
            "How much should I tip a taxi driver here?",
            "Do you think it will be windy enough to fly a kite?",
            "Where did I put the list of things for the party?",
            "Could you find a recipe that uses leftover rice?",
        ),
        comma_fragments=(
            ("If the train is late again tomorrow,", "can I claim the money back?"),
            ("Now that the garden is full of weeds,", "what is the easiest way to clear it?"),
            ("Before the guests arrive on Saturday,", "how long do I need to roast the lamb?"),
            ("Since the gym changed its opening hours,", "when is the quietest time to go?"),
        ),
        final_fragments=(
            ("The washing machine is leaking.", "There is water all over the floor.", "Who should I call first?"),
            ("I started a vegetable patch.", "The carrots came up very thin.", "What did I do wrong?"),
            ("My phone fell in the sink.", "It still turns on but the screen flickers.", "Is it worth repairing?"),
            ("We booked a cabin by the lake.", "It has no electricity at all.", "What should we bring for cooking?"),
        ),
        barge_ins=(
            "Hold on, I said Thursday, not Tuesday.",
            "No no, the other address, the one on Mill Lane.",
            "Stop, I already tried that and it did not help.",
            "Excuse me, I wanted the price for two nights.",
        ),
        monologues=(
            ("My uncle keeps bees behind his cottage.", "Every August he sells the honey at the market.",
             "This year he ran out before lunch."),
            ("The school play was on Thursday evening.", "My son had two lines as a talking tree.",
             "He remembered both of them perfectly."),
            ("Our street had a power cut last night.", "We lit candles and played board games.",
             "The lights came back just after ten."),
        ),
    ),
    # Bank "e", written in round 23 and never run: the next round's claim, once d has been read.
    "e": Sentences(
        questions=(
            "Is it safe to leave the dog alone in the car for ten minutes?",
            "What do people usually wear to a christening?",
            "Can I plant roses in the autumn or should I wait?",
            "Which platform does the night train to the coast leave from?",
            "How often should the smoke alarm batteries be changed?",
            "Does the library lend out cake tins as well as books?",
            "Where is the nearest place to recycle an old fridge?",
            "Would you recommend a good book about the moon landings?",
        ),
        comma_fragments=(
            ("When the lease runs out in September,", "do we have to repaint the walls?"),
            ("Now that my knee is getting better,", "how soon can I start running again?"),
            ("If we leave the house before seven,", "will we miss the worst of the traffic?"),
            ("Although the shop says it is waterproof,", "can I really take this watch swimming?"),
        ),
        final_fragments=(
            ("Our son wants a pet lizard.", "His room is quite cold in winter.", "Is that a problem for a lizard?"),
            ("I ordered a sofa in May.", "It still has not been delivered.", "What are my rights now?"),
            ("The neighbours are building a wall.", "It blocks the light into our kitchen.",
             "Who decides how tall it can be?"),
            ("My grandfather left me a clock.", "It stopped the day after the funeral.", "Where could I get it fixed?"),
        ),
        barge_ins=(
            "No, the appointment is for my daughter, not for me.",
            "Hang on, I never said anything about Sunday.",
            "Sorry, I meant the one with the green roof.",
            "Wait, how much would that cost altogether?",
        ),
        monologues=(
            ("We walked up the hill behind the village.", "At the top there was a ruined windmill.",
             "You could see three counties from the doorway."),
            ("My aunt opened a small bookshop last spring.", "She sells second-hand novels and maps.",
             "On Fridays she reads stories to the local children."),
            ("The storm took half the tiles off our roof.", "A builder came round the next morning.",
             "He covered the hole with a big blue sheet."),
        ),
    ),
}


# the question each shape's turn asks: the draw's k-th question, offset by shape so that one draw's
# shapes ask different questions
QUESTION_OFFSETS = {"smooth_turn_taking": 0, "backchannel": 1, "user_interruption": 3, "hesitant_barge_in": 5}


def turn_sentences(text: Sentences, seed: int, shape: str, k: int) -> tuple[str, ...]:
    """The sentences of the user's turn in a draw's k-th conversation of `shape` (from 0), in order.

    Why apart from the builder: the sentence, not the conversation, is what a false start hangs on
    (one question of bank d's eight had 7 of its 20), so a report groups its turns by these, and a
    result file written before it recorded them can still be grouped (compare.py)."""
    if shape in QUESTION_OFFSETS:
        return (text.questions[(seed + k + QUESTION_OFFSETS[shape]) % len(text.questions)],)
    if shape == "pause_handling":
        return text.comma_fragments[(seed + k) % len(text.comma_fragments)]
    if shape == "long_pause":
        return text.final_fragments[(seed + k) % len(text.final_fragments)]
    if shape == "monologue":
        return text.monologues[(seed + k) % len(text.monologues)]
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True, slots=True)
class Conversation:
    shape: str
    scenario: Scenario
    sentences: tuple[str, ...] = ()  # the user's turn (`turn_sentences`)
    speaker: Speaker | None = None  # who says it (and every piece of the user's in it)


class Builder:
    """Conversations for one TTS family and seed, with their clips written under `work`."""

    def __init__(self, family: str, seed: int, work: Path, tts: Tts, bank: str | Sentences = "b",
                 voices: tuple[str, ...] | None = None, noise: NoiseSpec | None = None,
                 hesitations: tuple[str, ...] = HESITATIONS, backchannels: tuple[str, ...] = BACKCHANNELS) -> None:
        self.family, self.seed, self.work, self.tts = family, seed, work, tts
        self.noise = noise  # a steady room noise under every conversation (the runner adds it, seeded)
        self.voices = voices  # None: the family's held-out voices
        # a bank's name, or sentences of one's own (duplex/cue/harvest.py: the cue model's training text)
        self.text = BANKS[bank] if isinstance(bank, str) else bank
        self.hesitations, self.backchannels = list(hesitations), list(backchannels)
        self.rng = np.random.default_rng(seed)

    def build(self, per_shape: int, shapes: tuple[str, ...] = SHAPES) -> list[Conversation]:
        out = []
        for k in range(per_shape):
            for shape in shapes:
                speaker = Speaker.draw(self.family, self.rng, self.voices)
                conversation = getattr(self, shape)(f"{shape}-{k + 1}", k, speaker)
                out.append(replace(conversation, sentences=turn_sentences(self.text, self.seed, shape, k),
                                   speaker=speaker))
        return out

    # --- pieces -------------------------------------------------------------------------------

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        return self.tts.say(text, speaker)

    def joined(self, parts: list[str], pauses: list[float], speaker: Speaker) -> np.ndarray:
        return self.spaced([self.say(text, speaker) for text in parts], pauses)[0]

    @staticmethod
    def spaced(pieces: list[np.ndarray], pauses: list[float]) -> tuple[np.ndarray, list[int]]:
        """The pieces one after another with the pauses between them, and the sample each starts at."""
        audio, starts, at = [pieces[0]], [0], pieces[0].size
        for piece, pause in zip(pieces[1:], pauses, strict=True):
            gap = silence(pause)
            audio += [gap, piece]
            starts.append(at + gap.size)
            at += gap.size + piece.size
        return np.concatenate(audio), starts

    LEAD_S = 0.05  # the silence `write` puts before (and after) a clip's audio

    def write(self, name: str, i: int, audio: np.ndarray) -> Path:
        path = self.work / name / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        pad = silence(self.LEAD_S)
        with written_whole(path) as partial:
            sf.write(partial, np.concatenate([pad, audio, pad]), SAMPLE_RATE, subtype="FLOAT")
        return path

    def scenario(self, name: str, clips: list[tuple[np.ndarray, float | After, Role]], tail: float,
                 expect: list[Check], echo: EchoSpec | None = None) -> Scenario:
        specs, end = [], 0.0
        for i, (audio, when, role) in enumerate(clips, start=1):
            path = self.write(name, i, audio)
            length = audio.size / SAMPLE_RATE + 0.1
            if isinstance(when, After):
                specs.append(ClipSpec(i, path, after=when, role=role))
                end += when.delay + length + 4.0  # the reply it waits for, then the clip
            else:
                specs.append(ClipSpec(i, path, at=when, role=role))
                end = max(end, when + length)
        exps = tuple(Expectation(c, {"max": 0}, 0) for c in expect)
        return Scenario(name=name, file=self.work / name / "conversation", duration=round(end + tail, 2),
                        user=tuple(specs), expect=exps, echo=echo, seed=self.seed, noise=self.noise)

    def question(self, k: int, speaker: Speaker, shape: str) -> np.ndarray:
        return self.say(turn_sentences(self.text, self.seed, shape, k)[0], speaker)

    # --- shapes -------------------------------------------------------------------------------

    def pause_handling(self, name: str, k: int, speaker: Speaker) -> Conversation:
        a, b = turn_sentences(self.text, self.seed, "pause_handling", k)
        audio = self.joined([a, b], [float(self.rng.uniform(0.5, 1.0))], speaker)
        return Conversation("pause_handling", self.scenario(name, [(audio, 0.5, Role.TURN)], 5.0,
                                                            [Check.FALSE_STARTS]))

    def smooth_turn_taking(self, name: str, k: int, speaker: Speaker) -> Conversation:
        clips = [(self.question(k, speaker, "smooth_turn_taking"), 0.5, Role.TURN)]
        return Conversation("smooth_turn_taking", self.scenario(name, clips, 5.0, [Check.FALSE_STARTS]))

    def user_interruption(self, name: str, k: int, speaker: Speaker) -> Conversation:
        cut = self.say(self.text.barge_ins[(self.seed + k) % len(self.text.barge_ins)], speaker)
        after = After(Trigger.SPEAKING_STARTED, 1, round(float(self.rng.uniform(0.5, 1.5)), 2))
        clips = [(self.question(k, speaker, "user_interruption"), 0.5, Role.TURN), (cut, after, Role.BARGE_IN)]
        return Conversation("user_interruption", self.scenario(name, clips, 5.0, [Check.RESUMES_OVER_BARGE_IN]))

    def hesitant_barge_in(self, name: str, k: int, speaker: Speaker) -> Conversation:
        pieces = list(self.rng.choice(self.hesitations, size=int(self.rng.integers(1, 3)), replace=False))
        main = self.text.barge_ins[(self.seed + k + 1) % len(self.text.barge_ins)]
        gaps = [float(self.rng.uniform(0.2, 0.6)) for _ in pieces]
        audio = self.joined([*map(str, pieces), main], gaps, speaker)
        after = After(Trigger.SPEAKING_STARTED, 1, round(float(self.rng.uniform(0.6, 1.5)), 2))
        clips = [(self.question(k, speaker, "hesitant_barge_in"), 0.5, Role.TURN), (audio, after, Role.BARGE_IN)]
        return Conversation("hesitant_barge_in", self.scenario(name, clips, 5.0, [Check.RESUMES_OVER_BARGE_IN]))

    def backchannel(self, name: str, k: int, speaker: Speaker) -> Conversation:
        picks = self.rng.choice(self.backchannels, size=2, replace=False)
        clips: list[tuple[np.ndarray, float | After, Role]] = [(self.question(k, speaker, "backchannel"), 0.5,
                                                                Role.TURN)]
        pieces = [(self.say(str(picks[0]), speaker), Role.BACKCHANNEL), (self.say(str(picks[1]), speaker),
                  Role.BACKCHANNEL), (cough(self.rng), Role.NOISE)]
        # One after another, as one listener makes them: 0.6-1.5 s into the reply, then 0.4-1.2 s
        # after the previous one ends (drawn independently, two pieces could overlap: no one person
        # says "yeah" over their own "mm-hmm").
        delay = float(self.rng.uniform(0.6, 1.5))
        for j in self.rng.permutation(3):
            audio, role = pieces[j]
            clips.append((audio, After(Trigger.SPEAKING_STARTED, 1, round(delay, 2)), role))
            delay += audio.size / SAMPLE_RATE + float(self.rng.uniform(0.4, 1.2))
        scenario = self.scenario(name, clips, 3.0, [], echo=EchoSpec(gain_db=-20.0, delay_ms=60.0))
        # The three pieces all wait for the same reply: the session needs the reply once, not thrice.
        scenario = _shorten(scenario, clips)
        return Conversation("backchannel", scenario)

    def long_pause(self, name: str, k: int, speaker: Speaker) -> Conversation:
        parts = turn_sentences(self.text, self.seed, "long_pause", k)
        audio = self.joined(list(parts), [float(self.rng.uniform(0.3, 1.5)) for _ in range(2)], speaker)
        return Conversation("long_pause", self.scenario(name, [(audio, 0.5, Role.TURN)], 5.0, [Check.FALSE_STARTS]))

    def monologue(self, name: str, k: int, speaker: Speaker) -> Conversation:
        clips: list[tuple[np.ndarray, float | After, Role]] = []
        at = 0.5
        for text in turn_sentences(self.text, self.seed, "monologue", k):
            audio = self.say(text, speaker)
            clips.append((audio, round(at, 3), Role.MONOLOGUE))
            at += audio.size / SAMPLE_RATE + 0.1 + 0.35  # 0.05 s pads each side: 0.45 s of silence
        return Conversation("monologue", self.scenario(name, clips, 5.0, [Check.FALSE_STARTS]))


def _shorten(scenario: Scenario, clips: list[tuple[np.ndarray, float | After, Role]]) -> Scenario:
    first = clips[0][0].size / SAMPLE_RATE + 0.6
    last = max(c[1].delay + c[0].size / SAMPLE_RATE for c in clips[1:] if isinstance(c[1], After))
    return replace(scenario, duration=round(first + 2.5 + last + 4.0, 2))
