"""The sentences of the embedding benchmark: 1000 of mixed length (seed 0), one a line, the same for every runtime.

    python3 Benchmarks/embed_sentences.py OUT.txt [--count 1000]

About 60% short (4-15 words), 30% medium (16-32), 10% long (33-64 words),
built from common English words, numbers and punctuation.
"""
import argparse
import random

WORDS = """the a of and to in is was for on that with as by at from it this be are an or which his her their
have has had not but were they one all we can there been more when will would who so if no out up about into
than them time only new some could these two may first then do any like my now over such our man me even most
made after also did many before must through back years where much your way well down should because each just
those people how too little state good very make world still own see men work long get here between both life
being under never day same another know while last might us great old year off come since against go came right
used take three states himself few house use during without again place american around however home small found
mrs thought went say part once general high upon school every don't does got united left number course war until
always away something fact though water less public put think almost hand enough far took head yet government
system better set told nothing night end why called didn't eyes find going look asked later knew point next city
program business give group toward young days let room president side social given present several order national
possible rather second face per among form important often things looked early white case john become large big
need four within felt along children saw best church ever least power development light thing seemed family
interest want members mind country area others done turned although open god service certain kind problem began
different door thus help sense means whole matter perhaps itself york it's times law human line above name example
action company hands local show whether five history gave today either act feet across taken past quite anything
having seen death experience body word half really week car field information""".split()
PUNCT = [",", ";", ":", " -", "!", "?", "'s", "(", ")"]


def sentence(rng):
    r = rng.random()
    n = rng.randint(4, 15) if r < 0.6 else rng.randint(16, 32) if r < 0.9 else rng.randint(33, 64)
    words = []
    for _ in range(n):
        w = rng.choice(WORDS)
        if rng.random() < 0.04:
            w = str(rng.randint(0, 2030))
        if rng.random() < 0.06:
            w += rng.choice(PUNCT)
        words.append(w)
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def sentences(count=1000, seed=0):
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(count)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--count", type=int, default=1000)
    args = p.parse_args()
    with open(args.out, "w") as f:
        f.write("\n".join(sentences(args.count)) + "\n")


if __name__ == "__main__":
    main()
