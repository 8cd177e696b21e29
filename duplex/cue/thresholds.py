"""The cue model's probabilities the rules act on (tiny-fd's barge-in rules and the VAD floor alike).

Chosen on the development voices (festival's kal_diphone), never on the held-out ones; a wrong
"backchannel" resumes a reply over a barge-in, the one mistake a user never forgives, so it needs
the surest verdict.
"""

BACKCHANNEL_P = 0.9  # "it was a backchannel (or a cough)": the held reply goes on at once
SECOND_PIECE_BC_P = 0.5  # ... a second held piece too, when the first was at least this likely one
STOP_P = 0.9  # "it was a stop word": the reply ends
STOPPED_ONLY_P = 0.5  # after a BREAK, P(stop) + P(backchannel): "only a short piece", the rest is to come
ASKS_P = 0.5  # "it asked something": the turn may be taken; below it, the unfinished silence
ASKED_P = 0.8  # ... so surely that tiny-fd answers it after 0.32 s of silence, whatever the network says
