"""The portfolio simulator (issue 16): the real daily pipeline run day after day on its own
database, against simulated consumers whose hidden ability and willingness to pay decide how
they answer each contact. An operations team tries a ladder change here before it touches a
consumer; the score and the experiments are measured here against the truth.
"""
