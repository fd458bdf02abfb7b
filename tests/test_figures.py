"""kdeep.report.figures: scatter labels that do not cover each other."""
from kdeep.report import figures


def test_label_points_keeps_labels_of_nearby_points_apart_and_inside_the_axes():
    plt = figures.pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    # The comparison's crowded corner: four models within 3 MMACs and 1.2 points of each other.
    points = [(30.8, 92.75, "resnet20"), (28.6, 92.52, "resnet18@0.25"), (29.2, 91.63, "vgg11_bn@0.25"),
              (25.8, 93.43, "googlenet_bn@0.125"), (8.8, 86.19, "deepconvnet")]
    axis.scatter([p[0] for p in points], [p[1] for p in points])
    axis.set(xscale="log")
    axis.margins(x=0.15, y=0.1)
    figure.tight_layout()
    notes = figures.label_points(axis, points)
    renderer = figure.canvas.get_renderer()
    boxes = [note.get_window_extent(renderer) for note in notes]
    frame = axis.get_window_extent(renderer)
    assert [note.get_text() for note in notes] == [p[2] for p in points]
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not any(box.overlaps(other) for other in boxes[i + 1:]), notes[i].get_text()
    # Without the helper, the first offset for every label makes resnet20's and resnet18@0.25's labels collide.
    plain = [axis.annotate(t, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8) for x, y, t in points]
    assert plain[0].get_window_extent(renderer).overlaps(plain[1].get_window_extent(renderer))
    plt.close(figure)
