package dev.mosaic.jupyter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Which files {@link NotebooksIT} executes: the four committed notebooks, nothing nbconvert wrote. */
class NotebookSelectionTest {
  @Test
  void onlyNumberedNotebooksAreExecuted() {
    assertTrue(NotebooksIT.NOTEBOOK.matcher("01-quick-start.ipynb").matches());
    assertTrue(NotebooksIT.NOTEBOOK.matcher("04-performance.ipynb").matches());
    assertFalse(NotebooksIT.NOTEBOOK.matcher("01-quick-start.nbconvert.ipynb").matches());
    assertFalse(NotebooksIT.NOTEBOOK.matcher("Untitled.ipynb").matches());
    assertFalse(NotebooksIT.NOTEBOOK.matcher("01-quick-start.ipynb~").matches());
  }

  @Test
  void theCommittedNotebooksAreTheFour() throws IOException {
    Path dir = Path.of(System.getProperty("mosaic.home", "..")).resolve("notebooks");
    List<String> names;
    try (Stream<Path> s = Files.list(dir)) {
      names = s.map(p -> p.getFileName().toString())
          .filter(n -> NotebooksIT.NOTEBOOK.matcher(n).matches()).sorted().toList();
    }
    assertEquals(List.of("01-quick-start.ipynb", "02-tabular-model.ipynb",
        "03-choosing-a-strategy.ipynb", "04-performance.ipynb"), names);
  }
}
