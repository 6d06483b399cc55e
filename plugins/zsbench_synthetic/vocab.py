"""Wording of every motion primitive, shared by class names and all text kinds.

Every primitive has one fixed wording per text kind, so that texts of classes that share a
primitive share the phrase describing it (a sentence encoder can relate an unseen
composition to the seen ones). Arm phrases carry placeholders filled by ``arm_words``
for the right, the left or both arms; class-level templates (``texts.py``) vary the frame.
"""
from __future__ import annotations

PARTS = ("head", "hands", "arms", "hips", "legs", "feet")

NEUTRAL_PARTS = {
    "head": "the head stays upright and looks forward",
    "hands": "the hands stay relaxed at the sides",
    "arms": "the arms hang loosely beside the body",
    "hips": "the hips stay level and still",
    "legs": "the legs stand straight",
    "feet": "the feet stay flat on the floor",
}


def arm_words(side: str) -> dict[str, str]:
    """Placeholder values for 'right', 'left' or 'both'."""
    if side == "both":
        return {"hand": "both hands", "fist": "both fists", "the_hand": "both hands",
                "the_fist": "both fists", "the_arm": "both arms", "the_elbow": "both elbows",
                "the_wrist": "both wrists", "the_shoulder": "both shoulders", "s": "",
                "es": "", "is": "are", "it": "they", "obj": "them", "a_circle": "circles",
                "a_hand": "both hands"}
    return {"hand": f"{side} hand", "fist": f"{side} fist", "the_hand": f"the {side} hand",
            "the_fist": f"the {side} fist", "the_arm": f"the {side} arm",
            "the_elbow": f"the {side} elbow", "the_wrist": f"the {side} wrist",
            "the_shoulder": f"the {side} shoulder", "s": "s", "es": "es", "is": "is",
            "it": "it", "obj": "it", "a_circle": "a circle", "a_hand": "a hand"}


# Keys: "arm:<name>" (placeholders), "legs:<name>", "torso:<name>", "partner:<name>".
# name / gerund: class-name phrases; desc / desc_ing: description clauses (the subject is
# the performer); motion: joint-level clause; parts: part -> clause; phases: start,
# middle, end clauses; context: sentences about where or why.
VOCAB: dict[str, dict] = {
    "arm:raise": dict(
        name="raise {hand}", gerund="raising {hand}",
        desc="raises {the_hand} high above the head and then lowers {obj} again",
        desc_ing="raising {the_hand} high above the head",
        motion="{the_shoulder} lift{s} {the_elbow} and {the_wrist} straight up until "
               "{the_hand} {is} above the head, then {it} come{s} back down",
        parts={"hands": "{the_hand} rise{s} above the head with the fingers pointing up",
               "arms": "{the_arm} {is} lifted straight up beside the head"},
        phases=("lifts {the_hand} from the side of the body",
                "holds {the_hand} high above the head", "lowers {the_hand} back to the side"),
        context=("People raise {a_hand} to ask a question in a classroom.",
                 "Raising {a_hand} is a way to volunteer or to be noticed.",
                 "A student raises {a_hand} before speaking in a meeting.")),
    "arm:wave": dict(
        name="wave {hand} overhead", gerund="waving {hand} overhead",
        desc="waves {the_hand} from side to side above the head",
        desc_ing="waving {the_hand} from side to side above the head",
        motion="{the_elbow} rise{s} above shoulder height and {the_wrist} swing{s} left and "
               "right above the head",
        parts={"hands": "{the_hand} swing{s} from side to side above the head",
               "arms": "{the_arm} {is} raised with the elbow bent and the forearm rocking "
                       "left and right"},
        phases=("raises {the_hand} above the head", "swings {the_hand} left and right "
                "several times", "lowers {the_hand} back down"),
        context=("People wave {a_hand} overhead to greet a friend who is far away.",
                 "Waving overhead helps to get attention in a crowd.",
                 "Fans wave like this at a concert or a sports game.")),
    "arm:punch": dict(
        name="punch forward with {fist}", gerund="punching forward with {fist}",
        desc="punches forward with {the_fist}, pulling {obj} back to the chest between "
             "punches",
        desc_ing="punching forward with {the_fist} again and again",
        motion="{the_elbow} draw{s} back beside the body and then {the_wrist} shoot{s} "
               "straight forward at shoulder height until {the_arm} {is} fully extended, "
               "again and again",
        parts={"hands": "{the_fist} drive{s} straight forward at shoulder height",
               "arms": "{the_arm} bend{s} and extend{s} quickly in front of the body"},
        phases=("pulls {the_fist} back beside the chest",
                "drives {the_fist} forward in quick punches",
                "brings {the_hand} back down to the side"),
        context=("Boxers punch forward like this when training on a bag.",
                 "A straight punch is a basic move in martial arts practice.",
                 "People shadow-box like this during a fitness class.")),
    "arm:circle": dict(
        name="draw {a_circle} with {hand}", gerund="drawing {a_circle} with {hand}",
        desc="draws {a_circle} in the air in front of the body with {the_hand}",
        desc_ing="drawing {a_circle} in the air with {the_hand}",
        motion="{the_arm} stay{s} stretched forward at chest height while {the_wrist} and "
               "{the_hand} move round in {a_circle}",
        parts={"hands": "{the_hand} trace{s} {a_circle} in the air",
               "arms": "{the_arm} {is} stretched forward and rotate{s} at the shoulder"},
        phases=("stretches {the_arm} forward", "moves {the_hand} round in {a_circle}",
                "lowers {the_arm} again"),
        context=("A teacher draws a circle in the air to explain a shape.",
                 "Arm circles loosen the shoulders during a warm-up.",
                 "Conductors and painters make round gestures like this.")),
    "arm:reach_floor": dict(
        name="reach to the floor with {hand}", gerund="reaching to the floor with {hand}",
        desc="bends forward and reaches {the_hand} down towards the floor, then straightens "
             "up",
        desc_ing="bending forward to reach {the_hand} down towards the floor",
        motion="the spine bends forward at the hips and {the_wrist} and {the_hand} move down "
               "below the knees towards the floor",
        parts={"hands": "{the_hand} reach{es} down towards the floor",
               "arms": "{the_arm} hang{s} straight down in front of the body",
               "hips": "the hips bend so that the upper body leans forward",
               "head": "the head goes down with the upper body"},
        phases=("bends the upper body forward", "stretches {the_hand} down to the floor",
                "straightens the back and lifts {the_hand} up"),
        context=("People reach to the floor to pick up something they dropped.",
                 "Reaching down to the floor is part of a stretching routine.",
                 "Someone touches the floor like this while tidying up a room.")),
    "arm:touch_head": dict(
        name="touch head with {hand}", gerund="touching the head with {hand}",
        desc="lifts {the_hand} and touches the top of the head, rubbing it gently",
        desc_ing="touching the top of the head with {the_hand}",
        motion="{the_elbow} rise{s} out to the side while {the_wrist} fold{s} inwards so that "
               "{the_hand} rest{s} on the head",
        parts={"hands": "{the_hand} rest{s} on the top of the head",
               "arms": "{the_arm} {is} bent with the elbow pointing out to the side",
               "head": "the head is touched by {the_hand}"},
        phases=("lifts {the_hand} towards the head", "rubs the head with {the_hand}",
                "takes {the_hand} away from the head"),
        context=("People touch their head when they have a headache.",
                 "Scratching or touching the head can show confusion.",
                 "Someone touches the head like this to fix their hair.")),
    "legs:squat": dict(
        name="squat", gerund="squatting",
        desc="squats down by bending both knees and then stands up again",
        desc_ing="squatting down and standing up again",
        motion="both knees and hips bend deeply so that the base of the spine drops towards "
               "the floor, then the legs straighten",
        parts={"hips": "the hips drop down and back", "legs": "both knees bend deeply and "
               "then straighten", "feet": "both feet stay flat on the floor"},
        phases=("bends both knees and lowers the hips", "holds the lowest squat position",
                "pushes up and stands straight again"),
        context=("Squats are a common exercise in the gym.",
                 "People squat down to look at something close to the ground.",
                 "A squat strengthens the legs during a workout.")),
    "legs:kick": dict(
        name="kick forward with right leg", gerund="kicking forward with the right leg",
        desc="lifts the right knee and kicks the right foot forward, then puts it back down",
        desc_ing="kicking the right foot forward",
        motion="the right knee rises to hip height and the right ankle and foot snap forward "
               "until the right leg is straight, while the left leg supports the body",
        parts={"hips": "the right hip flexes to lift the leg",
               "legs": "the right leg swings up and straightens in front of the body while "
                       "the left leg stands",
               "feet": "the right foot kicks forward and the left foot stays on the floor"},
        phases=("lifts the right knee", "snaps the right foot forward",
                "lowers the right leg back to the floor"),
        context=("A football player kicks a ball like this.",
                 "A front kick is a basic technique in karate.",
                 "Someone kicks forward like this to push a door open.")),
    "legs:step": dict(
        name="step in place", gerund="stepping in place",
        desc="steps in place, lifting the left and the right knee in turn",
        desc_ing="stepping in place with alternating knees",
        motion="the left and right knees rise in turn and the feet leave the floor one after "
               "the other, while the arms swing slightly",
        parts={"hips": "the hips shift a little with each step",
               "legs": "the knees lift one after the other",
               "feet": "the feet leave the floor in turn"},
        phases=("lifts the left knee", "keeps stepping with the left and right feet in turn",
                "puts both feet back on the floor"),
        context=("People march in place to warm up.",
                 "Stepping in place keeps someone moving while waiting.",
                 "Soldiers mark time by stepping in place.")),
    "legs:jump": dict(
        name="jump", gerund="jumping",
        desc="bends the knees and jumps straight up, landing softly on both feet",
        desc_ing="jumping straight up",
        motion="both knees bend, then the whole body rises as the feet leave the floor, and "
               "the knees bend again on landing while the arms swing up",
        parts={"hips": "the hips drop before the jump and then rise",
               "legs": "both legs bend and push off the floor",
               "feet": "both feet leave the floor and land again",
               "arms": "the arms swing up during the jump"},
        phases=("bends the knees to prepare", "jumps up into the air",
                "lands and straightens the legs"),
        context=("Children jump up and down when they are excited.",
                 "Jumping is part of many warm-up exercises.",
                 "A basketball player jumps like this to catch the ball.")),
    "torso:bow": dict(
        name="bow", gerund="bowing",
        desc="bows by bending the upper body forward from the hips and then straightens up",
        desc_ing="bowing forward from the hips",
        motion="the middle of the spine, the neck and the head tilt forward and down while "
               "the hips stay in place, then the spine straightens",
        parts={"head": "the head goes down and forward",
               "hips": "the body bends forward at the hips"},
        phases=("tilts the upper body forward", "holds the bow with the head lowered",
                "returns to an upright posture"),
        context=("People bow to greet someone politely in Japan.",
                 "Performers bow to the audience at the end of a show.",
                 "A bow can be a way to say thank you or sorry.")),
    "torso:twist": dict(
        name="twist the torso", gerund="twisting the torso",
        desc="twists the upper body to the left and to the right while the hips face forward",
        desc_ing="twisting the upper body from side to side",
        motion="the shoulders and the spine rotate about the vertical axis to the left and to "
               "the right while the hips stay still",
        parts={"head": "the head turns left and right together with the shoulders",
               "arms": "the arms swing round with the turning shoulders",
               "hips": "the upper body rotates above the still hips"},
        phases=("starts turning the shoulders to one side", "twists the upper body left and "
                "right", "turns back to face forward"),
        context=("Twisting the torso is a warm-up stretch for the back.",
                 "Golfers twist the upper body when they swing.",
                 "People twist like this to look behind them.")),
    "torso:lean": dict(
        name="lean sideways", gerund="leaning sideways",
        desc="leans the upper body to the left and to the right",
        desc_ing="leaning from side to side",
        motion="the spine bends sideways so that the neck and the shoulders tilt to the left "
               "and then to the right",
        parts={"head": "the head tilts sideways with the body",
               "arms": "one shoulder dips while the other rises",
               "hips": "the body bends sideways at the waist"},
        phases=("tilts the upper body to one side", "sways from side to side",
                "comes back to upright"),
        context=("Side bends stretch the waist in an exercise class.",
                 "People lean sideways to look around an obstacle.",
                 "Dancers sway from side to side to music.")),
    "torso:nod": dict(
        name="nod", gerund="nodding",
        desc="nods the head up and down several times",
        desc_ing="nodding the head",
        motion="only the head tilts down and up repeatedly on the neck while the rest of the "
               "spine stays still",
        parts={"head": "the head tilts down and up again several times"},
        phases=("lowers the chin", "nods the head up and down a few times",
                "holds the head level again"),
        context=("People nod to say yes.",
                 "Nodding shows that someone agrees or understands.",
                 "A listener nods like this during a conversation.")),
    "partner:still": dict(
        name="facing a partner who stands still",
        desc="another person stands facing them and does not move",
        motion="the other person's joints stay still",
        parts={"hands": "the other person keeps the hands down"},
        phases=("the other person stands facing them", "the other person keeps still",
                "the other person is still standing there"),
        context=("This happens between two people standing face to face.",
                 "The other person watches without moving.",
                 "It could be a moment in a conversation between two people.")),
    "partner:wave": dict(
        name="facing a partner who waves",
        desc="another person stands facing them and waves the right hand overhead",
        motion="the other person's right elbow rises above shoulder height and the other "
               "person's right wrist swings left and right above the head",
        parts={"hands": "the other person's right hand swings above the head",
               "arms": "the other person's right arm is raised"},
        phases=("the other person raises the right hand", "the other person waves the right "
                "hand", "the other person lowers the right hand"),
        context=("Two friends greet each other from a distance.",
                 "The other person waves back as a greeting.",
                 "It looks like a meeting between two people who know each other.")),
    "partner:bow": dict(
        name="facing a partner who bows",
        desc="another person stands facing them and bows forward from the hips",
        motion="the other person's spine, neck and head tilt forward and down, then "
               "straighten",
        parts={"head": "the other person's head goes down in a bow",
               "hips": "the other person bends forward at the hips"},
        phases=("the other person tilts forward", "the other person holds a bow",
                "the other person stands upright again"),
        context=("Two people greet each other politely.",
                 "The other person bows as a sign of respect.",
                 "It could be the start of a martial arts match.")),
    "partner:raise_both": dict(
        name="facing a partner who raises both hands",
        desc="another person stands facing them and raises both hands above the head",
        motion="the other person's shoulders lift both elbows and both wrists until both "
               "hands are above the head",
        parts={"hands": "the other person's hands go up above the head",
               "arms": "both of the other person's arms are lifted"},
        phases=("the other person lifts both hands", "the other person holds both hands up",
                "the other person lowers both hands"),
        context=("The other person raises both hands as if surrendering.",
                 "It looks like one person is threatening the other.",
                 "Two players might celebrate together like this.")),
}

COMBINATION_CONTEXT = (
    "It could be part of a workout routine.",
    "A coach might ask for this movement during a warm-up.",
    "Children might do this while playing a game.",
    "It could be a step in a dance.",
    "Someone might do this to stretch after sitting for a long time.",
    "It could be a gesture in a game of charades.",
)
PAIR_CONTEXT = (
    "It happens between two people standing face to face.",
    "Two people take part in this action.",
)
