package dev.mosaic.spark.train;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;

/**
 * The loss curve of a run, beside its checkpoint ({@code MODEL.safetensors → MODEL.log.csv}), one
 * row per step ({@link StepRecord#CSV_HEADER}). Rewritten whole (atomically) after each stage, so
 * it always matches the checkpoint; a resumed run reads it back and keeps the steps before the
 * checkpoint's.
 */
final class LossLog {
  private LossLog() {}

  static String pathFor(String modelPath) {
    return TrainingCheckpoint.besideModel(modelPath, ".log.csv");
  }

  static void write(String path, List<StepRecord> records, Configuration conf) {
    StringBuilder sb = new StringBuilder(StepRecord.CSV_HEADER).append('\n');
    for (StepRecord r : records) {
      sb.append(r.toCsv()).append('\n');
    }
    byte[] bytes = sb.toString().getBytes(StandardCharsets.UTF_8);
    HadoopFiles.writeAtomically(path, conf, local -> {
      try {
        Files.write(local, bytes);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  /** The records of steps below {@code beforeStep}; none when the log does not exist. */
  static List<StepRecord> read(String path, long beforeStep, Configuration conf) {
    if (!HadoopFiles.exists(path, conf)) {
      return new ArrayList<>();
    }
    List<String> lines = HadoopFiles.read(path, conf, local -> {
      try {
        return Files.readAllLines(local, StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    List<StepRecord> out = new ArrayList<>();
    for (int i = 1; i < lines.size(); i++) {
      if (!lines.get(i).isBlank()) {
        StepRecord r = StepRecord.fromCsv(path, lines.get(i));
        if (r.step() < beforeStep) {
          out.add(r);
        }
      }
    }
    return out;
  }
}
