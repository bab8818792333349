"""What composes extract and model over videos: predict, timelines, evaluate, explanations."""
