#pragma once
// The look every QuantScope plot shares, set up in one place: the message
// label that stands in for a plot (placeholder, busy, error), and the plot
// frame (drag and wheel-zoom on both axes, a bold title row, top and right
// axes mirroring bottom and left without labels so the frame reads as one).
#include <QFont>
#include <QString>

class QCPItemText;
class QCPTextElement;
class QCustomPlot;
class QLabel;

namespace qs::ui {

// Big, centred, word-wrapped.
void style_message_label(QLabel* label);
// Shows `message` in it: quiet grey, or red for an error.
void set_message(QLabel* label, const QString& message, bool error);

// Interactions and the title row (its element is returned, empty); `base` is the widget's font.
QCPTextElement* add_title_and_zoom(QCustomPlot* plot, const QFont& base);
// xAxis2/yAxis2 visible, unlabelled, following xAxis/yAxis.
void mirror_axes(QCustomPlot* plot);
// The hover read-out: a framed text box in the top-right corner of the axis rect, hidden until set.
QCPItemText* add_hover_readout(QCustomPlot* plot);

}  // namespace qs::ui
