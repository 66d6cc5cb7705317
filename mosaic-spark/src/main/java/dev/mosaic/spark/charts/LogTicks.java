package dev.mosaic.spark.charts;

import java.math.BigDecimal;
import java.math.MathContext;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberTickUnit;

/** Log axes whose ticks read as numbers. */
final class LogTicks {
  private LogTicks() {}

  /**
   * A log axis with a tick at every whole power of {@code base} and plain labels: integers on a
   * base-2 axis (1024, 2048, ...), SI prefixes on a base-10 one (0.1, 1, 10, 1k, ...), instead of
   * JFreeChart's {@code 2^13.5} and {@code 10^1.6}.
   */
  static LogAxis axis(String label, int base) {
    LogAxis ax = new LogAxis(label);
    ax.setBase(base);
    ax.setTickUnit(new NumberTickUnit(1)); // one power of the base per tick; turns off auto units
    ax.setNumberFormatOverride(new TickFormat(base == 2));
    ax.setMinorTickMarksVisible(true);
    return ax;
  }

  /** Tick labels of {@link #axis}. */
  static final class TickFormat extends NumberFormat {
    private static final long serialVersionUID = 1L;
    private static final String[] PREFIXES = {"", "k", "M", "G", "T", "P"};
    private final boolean integers;

    TickFormat(boolean integers) {
      this.integers = integers;
    }

    /** {@code 16384} as is on a base-2 axis; {@code 1.5k}, {@code 20M}, {@code 0.01} otherwise. */
    static String label(double v, boolean integers) {
      if (integers && Math.abs(v) >= 1 && v == Math.rint(v) && Math.abs(v) < 1e15) {
        return Long.toString((long) v);
      }
      double a = Math.abs(v);
      int p = 0;
      while (a >= 1000 && p < PREFIXES.length - 1) {
        a /= 1000;
        v /= 1000;
        p++;
      }
      BigDecimal d = new BigDecimal(v).round(new MathContext(3));
      return d.stripTrailingZeros().toPlainString() + PREFIXES[p];
    }

    @Override
    public StringBuffer format(double number, StringBuffer to, FieldPosition pos) {
      return to.append(label(number, integers));
    }

    @Override
    public StringBuffer format(long number, StringBuffer to, FieldPosition pos) {
      return to.append(label(number, integers));
    }

    @Override
    public Number parse(String source, ParsePosition pos) {
      return null; // labels only
    }
  }
}
