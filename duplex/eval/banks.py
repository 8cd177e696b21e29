"""The held-out set's sentences, in banks of the same shapes (docs/metrics.md, "Sentences").

Why a module of their own: they are data that only grows (a bank is written for each claim and
never changed after it is read), and the builder that says them (heldout.py) is code. None is used
anywhere else in the project: the cue network's training text is checked against them
(duplex/cue/text.py, `check_disjoint`) and the banks against each other (tests/test_eval.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sentences:
    """One bank of the held-out set's sentences (used nowhere else in the project)."""

    questions: tuple[str, ...]
    comma_fragments: tuple[tuple[str, str], ...]  # the first part ends on a comma, held pitch
    final_fragments: tuple[tuple[str, str, str], ...]  # three parts, each of which could end a turn
    barge_ins: tuple[str, ...]
    monologues: tuple[tuple[str, str, str], ...]  # three statements, each sounding final


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
    # Bank "e", written in round 23, first run for round 24's claim (aggregates, sentences and
    # voices read; no rule made on it).
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
    # Bank "f", written in round 24 and never run: twice the sentences of a bank before it, since a
    # false-start rate is as sure as the number of sentences it rests on (docs/metrics.md).
    "f": Sentences(
        questions=(
            "Should I water the tomatoes in the morning or at night?",
            "How long does it take to walk round the lake?",
            "Is there a cheaper way to send a parcel to Spain?",
            "What time do the swimming baths close on Sundays?",
            "Can you tell me when the next bus to the airport leaves?",
            "Why does my bread always come out so flat?",
            "Who do I ask about a parking permit for my street?",
            "Are dogs allowed on the beach in the summer?",
            "Could you check if the museum is open on Mondays?",
            "Which wine goes best with a mushroom risotto?",
            "Do I need a visa to visit Canada for a week?",
            "Where can I get my bicycle chain replaced today?",
            "Is it too late to book a table for eight people tonight?",
            "How many eggs do I need for a large sponge cake?",
            "What should I do if my boiler makes a banging noise?",
            "Will the ferry still run if the wind picks up?",
        ),
        comma_fragments=(
            ("Since the kids are off school next week,", "what could we do on a rainy day?"),
            ("Before I sign the contract for the flat,", "what should I check first?"),
            ("Once the paint on the fence has dried,", "do I need a second coat?"),
            ("Because my phone keeps running out of battery,", "should I buy a new one?"),
            ("While we are in Rome for the weekend,", "which sights should we not miss?"),
            ("As soon as the frost is over,", "can I move the lemon tree outside?"),
            ("Unless the trains are running again tomorrow,", "how else can I get to work?"),
            ("After the kitchen has been tiled,", "how long before we can use it?"),
        ),
        final_fragments=(
            ("I bought a second-hand car last week.", "The brakes make a squeaking sound.",
             "Is it safe to drive?"),
            ("Our cat has stopped eating.", "She just sleeps under the bed all day.", "Should we take her to the vet?"),
            ("The hotel charged my card twice.", "They say the second payment will vanish.", "How long should I wait?"),
            ("I want to learn the piano.", "I am nearly sixty years old.", "Is that too old to start?"),
            ("We have a wedding in June.", "The invitation says smart casual.", "What does that mean for men?"),
            ("The lawn is full of moss.", "It gets very little sun.", "What can I do about it?"),
            ("My sister is visiting from Australia.", "She lands early on Saturday.",
             "Where should we take her first?"),
            ("The dishwasher leaves white marks on the glasses.", "I already use rinse aid.",
             "What else could it be?"),
        ),
        barge_ins=(
            "No, I said the blue one, not the black one.",
            "Hold on, that is for next month, not this one.",
            "Sorry, I was asking about the train, not the bus.",
            "Wait, can you make it for three people instead?",
            "Stop, I already booked that part myself.",
            "Actually I meant the shop in the town centre.",
            "That is not the address I gave you.",
            "Excuse me, the price has to be under fifty pounds.",
        ),
        monologues=(
            ("My brother started a new job in March.", "He works on a farm near the coast.",
             "Every morning he feeds two hundred sheep."),
            ("We went to a concert in the park on Friday.", "It rained for the whole first half.",
             "Nobody seemed to mind at all."),
            ("Our street had a party for the coronation.", "Someone brought a huge urn of tea.",
             "The children ran a cake stall until dark."),
            ("I finally cleared out the garage on Sunday.", "There were four broken lawnmowers in it.",
             "The tip took them all for free."),
            ("The village choir sang at the hospital yesterday.", "Most of the patients joined in.",
             "One nurse even cried a little."),
            ("My daughter learned to ride a bike this week.", "She fell off twice on the first day.",
             "By Thursday she was racing her friends."),
        ),
    ),
}
